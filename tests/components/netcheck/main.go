// Command netcheck is the lab's test workload, small enough to build into an image here.
//
//	netcheck serve [-addr :8080] [-data DIR]   HTTP: / answers "<hostname> <version>"; /data
//	                                            returns DIR/data (written on first start, kept on
//	                                            restarts: shows that a volume survived)
//	netcheck probe [-timeout 3s] HOST:PORT ...   exit 0 if every TCP connection succeeds, 1 if one
//	                                            fails; prints one line per target
//	netcheck dns [-timeout 3s] NAME              exit 0 if NAME resolves, prints the addresses
//	netcheck fetch [-timeout 3s] URL             HTTP GET; prints the body, exit 0 on a 200
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

var version = "dev"

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: netcheck serve|probe|dns|version ...")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2:])
	case "probe":
		os.Exit(probe(os.Args[2:]))
	case "dns":
		os.Exit(dns(os.Args[2:]))
	case "fetch":
		os.Exit(fetch(os.Args[2:]))
	case "version":
		fmt.Println(version)
	default:
		fmt.Fprintf(os.Stderr, "netcheck: unknown command %q\n", os.Args[1])
		os.Exit(2)
	}
}

func serve(args []string) {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", ":8080", "listen address")
	dataDir := fs.String("data", "", "directory whose data file is created once and served at /data")
	_ = fs.Parse(args)
	host, _ := os.Hostname()
	if *dataDir != "" {
		f := filepath.Join(*dataDir, "data")
		if _, err := os.Stat(f); os.IsNotExist(err) {
			stamp := fmt.Sprintf("written by %s at %s\n", host, time.Now().UTC().Format(time.RFC3339))
			if err := os.WriteFile(f, []byte(stamp), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "netcheck:", err)
				os.Exit(1)
			}
		}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "%s %s\n", host, version)
	})
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("/data", func(w http.ResponseWriter, _ *http.Request) {
		b, err := os.ReadFile(filepath.Join(*dataDir, "data"))
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		_, _ = w.Write(b)
	})
	srv := &http.Server{Addr: *addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-stop
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	}()
	fmt.Printf("netcheck %s serving on %s\n", version, *addr)
	if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, "netcheck:", err)
		os.Exit(1)
	}
}

func probe(args []string) int {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "connect timeout per target")
	_ = fs.Parse(args)
	rc := 0
	for _, target := range fs.Args() {
		c, err := net.DialTimeout("tcp", target, *timeout)
		if err != nil {
			fmt.Printf("%s blocked: %v\n", target, err)
			rc = 1
			continue
		}
		_ = c.Close()
		fmt.Printf("%s open\n", target)
	}
	return rc
}

func dns(args []string) int {
	fs := flag.NewFlagSet("dns", flag.ExitOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "lookup timeout")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	rc := 0
	for _, name := range fs.Args() {
		addrs, err := net.DefaultResolver.LookupHost(ctx, name)
		if err != nil {
			fmt.Printf("%s unresolved: %v\n", name, err)
			rc = 1
			continue
		}
		fmt.Printf("%s %v\n", name, addrs)
	}
	return rc
}

func fetch(args []string) int {
	fs := flag.NewFlagSet("fetch", flag.ExitOnError)
	timeout := fs.Duration("timeout", 3*time.Second, "request timeout")
	_ = fs.Parse(args)
	if fs.NArg() != 1 {
		fmt.Fprintln(os.Stderr, "usage: netcheck fetch [-timeout 3s] URL")
		return 2
	}
	client := &http.Client{Timeout: *timeout}
	resp, err := client.Get(fs.Arg(0))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netcheck:", err)
		return 1
	}
	defer resp.Body.Close()
	_, _ = io.Copy(os.Stdout, resp.Body)
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintln(os.Stderr, "netcheck:", resp.Status)
		return 1
	}
	return 0
}
