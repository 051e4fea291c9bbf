// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/coredns

go 1.23.0

require (
	github.com/coredns/coredns v1.11.3
)
