// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/kube-bench

go 1.23.0

require (
	github.com/aquasecurity/kube-bench v0.9.4
)
