// Command etcd is a one-member etcd server for the e2e lab's kube-apiserver,
// built on etcd's embed package at the version Kubernetes itself requires.
//
//	etcd --data-dir DIR --listen-client-urls http://127.0.0.1:2379
//
// It serves until SIGINT or SIGTERM, then closes cleanly.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
)

func main() {
	dir := flag.String("data-dir", "", "directory for etcd's data (required)")
	client := flag.String("listen-client-urls", "http://127.0.0.1:2379", "client URL to listen on")
	peer := flag.String("listen-peer-urls", "http://127.0.0.1:2380", "peer URL to listen on")
	logLevel := flag.String("log-level", "warn", "etcd's log level: debug, info, warn, error")
	flag.Parse()
	if *dir == "" || flag.NArg() != 0 {
		fmt.Fprintln(os.Stderr, "etcd: --data-dir is required and no arguments are taken")
		os.Exit(2)
	}
	cu, err := url.Parse(*client)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: --listen-client-urls: %v\n", err)
		os.Exit(2)
	}
	pu, err := url.Parse(*peer)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: --listen-peer-urls: %v\n", err)
		os.Exit(2)
	}

	cfg := embed.NewConfig()
	cfg.Dir = *dir
	cfg.LogLevel = *logLevel
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = cfg.Name + "=" + pu.String()

	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		os.Exit(1)
	}
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(60 * time.Second):
		e.Close()
		fmt.Fprintln(os.Stderr, "etcd: not ready within 60s")
		os.Exit(1)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sig:
	case err := <-e.Err():
		fmt.Fprintf(os.Stderr, "etcd: %v\n", err)
		e.Close()
		os.Exit(1)
	}
	e.Close()
}
