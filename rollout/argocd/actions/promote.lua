-- Argo CD action "promote": sets rollout.dev/promote=step for the rollout controller to act on.
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/promote"] = "step"
return obj
