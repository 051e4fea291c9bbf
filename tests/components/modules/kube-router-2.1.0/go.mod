// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/kube-router

go 1.23.0

require (
	github.com/cloudnativelabs/kube-router/v2 v2.1.0
)
