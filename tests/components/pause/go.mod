// The pause container of the lab's images: the sandbox process of every pod. It only waits for
// SIGINT or SIGTERM, like upstream's pause.c, and reaps children when it runs as PID 1 with a
// shared PID namespace.
module juno.hub/components/pause

go 1.23.0
