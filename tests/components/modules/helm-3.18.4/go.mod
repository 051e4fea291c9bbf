// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/helm

go 1.24.0

require helm.sh/helm/v3 v3.18.4
