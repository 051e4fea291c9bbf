// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/cri-tools

go 1.24.1

require sigs.k8s.io/cri-tools v1.34.0
