-- Argo CD action "abort": sets rollout.dev/abort=true for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/abort"] = "true"
return obj
