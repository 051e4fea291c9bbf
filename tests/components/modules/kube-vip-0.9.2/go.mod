// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/kube-vip

go 1.24.4

require github.com/kube-vip/kube-vip v0.9.2
