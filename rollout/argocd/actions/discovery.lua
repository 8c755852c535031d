-- Argo CD actions of a rollout.dev Rollout: which ones apply to the object as it is now.
-- Each action only sets a command annotation; the rollout controller acts on it and removes it.
local status = obj.status or {}
local strategy = (obj.spec or {}).strategy or {}

local function paused_by(reason)
  for _, pause in ipairs(status.pauseConditions or {}) do
    if pause.reason == reason then
      return true
    end
  end
  return false
end

local updating = status.currentRevision ~= nil and status.stableRevision ~= nil
  and status.currentRevision ~= status.stableRevision and status.aborted ~= true
-- What `promote` passes: a pause step, an inconclusive analysis, a blue/green awaiting promotion.
local waiting = paused_by("CanaryPauseStep") or paused_by("AnalysisInconclusive") or paused_by("BlueGreenPause")
local stepped = strategy.canary ~= nil or strategy.blueGreen ~= nil

local actions = {}
actions["promote"] = {["disabled"] = not (updating and waiting)}
actions["promote-full"] = {["disabled"] = not (updating and stepped)}
-- abort also stops a running restart
actions["abort"] = {["disabled"] = not (updating or status.restartedAt ~= nil)}
actions["retry"] = {["disabled"] = status.aborted ~= true}
actions["pause"] = {["disabled"] = paused_by("UserPause")}
actions["resume"] = {["disabled"] = not paused_by("UserPause")}
-- A restart replaces the stable pods of a Rollout at rest: Healthy, nothing else under way.
-- A single replica is not restarted: its eviction would leave no Ready pod.
local at_rest = status.phase == "Healthy" and not updating and status.aborted ~= true
  and #(status.pauseConditions or {}) == 0 and status.restartedAt == nil
  and ((obj.spec or {}).replicas or 1) >= 2
actions["restart"] = {["disabled"] = not at_rest}
return actions
