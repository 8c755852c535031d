-- Argo CD action "resume": sets rollout.dev/resume=true for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/resume"] = "true"
return obj
