// netcheck: the lab's test workload (tests/components/build.py builds it into the image
// juno.test/netcheck). Standard library only.
module juno.hub/components/netcheck

go 1.23.0
