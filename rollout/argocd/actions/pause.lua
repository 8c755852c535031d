-- Argo CD action "pause": sets rollout.dev/pause=true for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/pause"] = "true"
return obj
