-- Argo CD action "restart": sets rollout.dev/restart=true for the rollout controller to act on
-- (the stable revision's pods replaced one at a time, each Ready before the next).
if obj.metadata.annotations == nil then
  obj.metadata.annotations = {}
end
obj.metadata.annotations["rollout.dev/restart"] = "true"
return obj
