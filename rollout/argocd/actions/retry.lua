-- Argo CD action "retry": sets rollout.dev/retry=true for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/retry"] = "true"
return obj
