-- Argo CD action "promote-full": sets rollout.dev/promote=full for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/promote"] = "full"
return obj
