// Command noop is the floor under flinkmem's webhook figures: an admission webhook that allows
// everything and does nothing else. It decodes only the review's uid, echoes it with allowed=true,
// and keeps connections open (HTTP/1.1 keep-alive, or HTTP/2 when the client asks for it over ALPN).
//
//	noop -cert CERT -key KEY -addr 127.0.0.1:PORT
//
// It prints "ready" on stdout once it listens. Built by benchmarks/gotools.py into the cache; never
// committed as a binary.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
)

type review struct {
	Request struct {
		UID string `json:"uid"`
	} `json:"request"`
}

var buffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func answer(w http.ResponseWriter, r *http.Request) {
	buf := buffers.Get().(*bytes.Buffer)
	buf.Reset()
	defer buffers.Put(buf)
	if _, err := io.Copy(buf, io.LimitReader(r.Body, 3<<20)); err != nil {
		http.Error(w, "cannot read the body", http.StatusBadRequest)
		return
	}
	var in review
	if err := json.Unmarshal(buf.Bytes(), &in); err != nil || in.Request.UID == "" {
		http.Error(w, "not an AdmissionReview with a request.uid", http.StatusBadRequest)
		return
	}
	// The uid is a string the API server chose; quote it properly rather than trusting its bytes.
	uid, _ := json.Marshal(in.Request.UID)
	out := make([]byte, 0, 128)
	out = append(out, `{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","response":{"uid":`...)
	out = append(out, uid...)
	out = append(out, `,"allowed":true}}`...)
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(out))}
	_, _ = w.Write(out)
}

func main() {
	cert := flag.String("cert", "", "serving certificate (PEM)")
	key := flag.String("key", "", "its private key (PEM)")
	addr := flag.String("addr", "127.0.0.1:0", "listen address")
	flag.Parse()
	listener, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	// The bound address goes out first, so a caller that asked for port 0 learns the port.
	fmt.Fprintf(os.Stdout, "ready %s\n", listener.Addr())
	server := &http.Server{Handler: http.HandlerFunc(answer), ErrorLog: log.New(io.Discard, "", 0)}
	log.Fatal(server.ServeTLS(listener, *cert, *key))
}
