-- Argo CD health of a rollout.dev Rollout (resource.customizations.health.rollout.dev_Rollout).
-- Argo CD runs this in gopher-lua (Lua 5.1) with the live object as `obj`; it reads the status
-- the controller writes and the few spec fields that tell a timed wait from one needing a person.
local hs = {}
local status = obj.status
local spec = obj.spec or {}
local strategy = spec.strategy or {}
local generation = obj.metadata.generation

local function condition(kind)
  for _, c in ipairs(status.conditions or {}) do
    if c.type == kind then
      return c
    end
  end
  return nil
end

-- A pause the controller lifts on its own: a timed canary pause step, or a blue/green counting
-- down autoPromotionSeconds. Every other pause waits for a person (promote, resume, spec.paused).
local function ends_by_itself(reason)
  if reason == "CanaryPauseStep" and strategy.canary ~= nil and status.currentStepIndex ~= nil then
    local step = (strategy.canary.steps or {})[status.currentStepIndex + 1]
    return step ~= nil and step.pause ~= nil and step.pause.duration ~= nil
  end
  if reason == "BlueGreenPause" and strategy.blueGreen ~= nil then
    local bg = strategy.blueGreen
    return bg.autoPromotionEnabled ~= false and bg.autoPromotionSeconds ~= nil and bg.autoPromotionSeconds > 0
  end
  return false
end

if status == nil or status.observedGeneration == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the rollout controller to observe the Rollout"
  return hs
end

if generation ~= nil and status.observedGeneration < generation then
  hs.status = "Progressing"
  hs.message = "Waiting for the rollout controller to observe generation " .. generation
    .. " (observed " .. status.observedGeneration .. "); last status: " .. (status.message or "")
  return hs
end

hs.message = status.message or ""

local invalid = condition("InvalidSpec")
if status.phase == "Degraded" or status.aborted == true or (invalid ~= nil and invalid.status == "True") then
  hs.status = "Degraded"
  return hs
end

if status.phase == "Paused" then
  hs.status = "Progressing"
  for _, pause in ipairs(status.pauseConditions or {}) do
    if not ends_by_itself(pause.reason) then
      hs.status = "Suspended"
    end
  end
  return hs
end

if status.phase == "Healthy" and status.stableRevision ~= nil
    and status.stableRevision == status.currentRevision then
  local desired = spec.replicas
  if desired == nil then
    desired = 1
  end
  if (status.availableReplicas or 0) >= desired then
    hs.status = "Healthy"
    return hs
  end
end

hs.status = "Progressing"
return hs
