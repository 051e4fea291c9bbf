// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/cni-plugins

go 1.23.0

require (
	github.com/containernetworking/plugins v1.6.0
)
