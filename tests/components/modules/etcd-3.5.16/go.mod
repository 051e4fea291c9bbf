// Built by tests/components/build.py (--write-go-mod wrote this file); go.sum pins it.
module juno.hub/components/etcd

go 1.23.0

require (
	go.etcd.io/etcd/server/v3 v3.5.16
	go.etcd.io/etcd/etcdctl/v3 v3.5.16
	go.etcd.io/etcd/etcdutl/v3 v3.5.16
)

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 v3.5.16
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 v3.5.16
	go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.16
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 v3.5.16
	go.etcd.io/etcd/etcdutl/v3 => go.etcd.io/etcd/etcdutl/v3 v3.5.16
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 v3.5.16
	go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 v3.5.16
	go.etcd.io/etcd/server/v3 => go.etcd.io/etcd/server/v3 v3.5.16
)
