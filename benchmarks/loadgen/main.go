// Command loadgen sends HTTPS requests for flinkmem's benchmarks and prints one JSON line of figures:
// throughput, latency percentiles and the CPU time it spent itself, so that the benchmark can count
// the load generator apart from the server it measures. Written in Go so that it costs little of the
// two cores it shares with the server.
//
// Closed loop (default): -concurrency workers send -count requests back to back over kept-alive
// connections. Open loop (-rate R): request i starts at i/R seconds whatever the others are doing.
// The body template's {{N}} is replaced by each request's index (from -start), so every object
// created through an API server gets its own name.
package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

type options struct {
	url, method, contentType, contains string
	allowed                            string // "true", "false" or "" (not checked)
	patched                            bool
	concurrency, count, warmup, start  int
	expect                             int
	rate                               float64
	http2                              bool
}

type result struct {
	Requests   int     `json:"requests"`
	Seconds    float64 `json:"seconds"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	P50        float64 `json:"p50_ms"`
	P90        float64 `json:"p90_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
	CPUSeconds float64 `json:"cpu_seconds"`
}

type template struct{ parts [][]byte }

func (t template) body(index int) []byte {
	if len(t.parts) == 1 {
		return t.parts[0]
	}
	number := strconv.Itoa(index)
	out := make([]byte, 0, len(t.parts[0])*2)
	for i, part := range t.parts {
		if i > 0 {
			out = append(out, number...)
		}
		out = append(out, part...)
	}
	return out
}

type runner struct {
	opts     options
	client   *http.Client
	body     template
	errors   atomic.Int64
	firstErr atomic.Value
}

func (r *runner) fail(format string, args ...any) {
	r.errors.Add(1)
	r.firstErr.CompareAndSwap(nil, fmt.Sprintf(format, args...))
}

func (r *runner) one(index int) time.Duration {
	request, err := http.NewRequest(r.opts.method, r.opts.url, bytes.NewReader(r.body.body(index)))
	if err != nil {
		r.fail("request %d: %v", index, err)
		return 0
	}
	request.Header.Set("Content-Type", r.opts.contentType)
	started := time.Now()
	response, err := r.client.Do(request)
	if err != nil {
		r.fail("request %d: %v", index, err)
		return time.Since(started)
	}
	payload, err := io.ReadAll(response.Body)
	response.Body.Close()
	elapsed := time.Since(started)
	switch {
	case err != nil:
		r.fail("request %d: reading the answer: %v", index, err)
	case response.StatusCode != r.opts.expect:
		r.fail("request %d: HTTP %d, expected %d: %.500s", index, response.StatusCode, r.opts.expect, payload)
	case r.opts.contains != "" && !bytes.Contains(payload, []byte(r.opts.contains)):
		r.fail("request %d: the answer lacks %q: %.500s", index, r.opts.contains, payload)
	case r.opts.allowed != "" || r.opts.patched:
		var answer struct {
			Response struct {
				Allowed *bool  `json:"allowed"`
				Patch   string `json:"patch"`
			} `json:"response"`
		}
		err := json.Unmarshal(payload, &answer)
		switch {
		case err != nil || answer.Response.Allowed == nil:
			r.fail("request %d: not an AdmissionReview answer: %.500s", index, payload)
		case r.opts.allowed != "" && strconv.FormatBool(*answer.Response.Allowed) != r.opts.allowed:
			r.fail("request %d: allowed is %v, expected %s: %.500s", index, *answer.Response.Allowed, r.opts.allowed, payload)
		case r.opts.patched && answer.Response.Patch == "":
			r.fail("request %d: the answer has no patch: %.500s", index, payload)
		}
	}
	return elapsed
}

func (r *runner) closed(first, count int) []time.Duration {
	latencies := make([]time.Duration, count)
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < r.opts.concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				latencies[i] = r.one(first + i)
			}
		}()
	}
	wg.Wait()
	return latencies
}

func (r *runner) paced(first, count int) []time.Duration {
	latencies := make([]time.Duration, count)
	var wg sync.WaitGroup
	begin := time.Now()
	for i := 0; i < count; i++ {
		time.Sleep(time.Until(begin.Add(time.Duration(float64(i) / r.opts.rate * float64(time.Second)))))
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			latencies[i] = r.one(first + i)
		}(i)
	}
	wg.Wait()
	return latencies
}

func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	seconds := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return seconds(usage.Utime) + seconds(usage.Stime)
}

func percentile(sorted []time.Duration, q float64) float64 {
	index := int(q * float64(len(sorted)))
	if index >= len(sorted) {
		index = len(sorted) - 1
	}
	return float64(sorted[index]) / float64(time.Millisecond)
}

func tlsConfig(caFile, certFile, keyFile string) (*tls.Config, error) {
	config := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s: no PEM certificate", caFile)
		}
		config.RootCAs = pool
	}
	if certFile != "" {
		pair, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, err
		}
		config.Certificates = []tls.Certificate{pair}
	}
	return config, nil
}

func main() {
	var o options
	var bodyFile, caFile, certFile, keyFile, latencyFile string
	flag.StringVar(&o.url, "url", "", "where to send the requests")
	flag.StringVar(&o.method, "method", "POST", "HTTP method")
	flag.StringVar(&bodyFile, "body", "", "request body template ({{N}} becomes the request's index)")
	flag.StringVar(&o.contentType, "content-type", "application/json", "Content-Type of the body")
	flag.StringVar(&o.contains, "contains", "", "text every answer must contain")
	flag.StringVar(&o.allowed, "allowed", "", "every answer must be an AdmissionReview with this allowed (true or false)")
	flag.BoolVar(&o.patched, "patched", false, "every answer must be an AdmissionReview with a patch")
	flag.IntVar(&o.expect, "expect", 200, "HTTP status every answer must have")
	flag.IntVar(&o.concurrency, "concurrency", 1, "workers of the closed loop")
	flag.IntVar(&o.count, "count", 1000, "measured requests")
	flag.IntVar(&o.warmup, "warmup", 0, "requests sent first and not measured")
	flag.IntVar(&o.start, "start", 0, "index of the first request")
	flag.Float64Var(&o.rate, "rate", 0, "open loop at this many requests per second (0: closed loop)")
	flag.BoolVar(&o.http2, "http2", false, "offer HTTP/2 (the API server's webhook client does)")
	flag.StringVar(&caFile, "ca", "", "CA bundle to verify the server")
	flag.StringVar(&certFile, "cert", "", "client certificate")
	flag.StringVar(&keyFile, "key", "", "client key")
	flag.StringVar(&latencyFile, "latencies", "", "also write every measured latency (ms, one per line) here")
	flag.Parse()
	fatal := func(err error) {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(2)
	}
	config, err := tlsConfig(caFile, certFile, keyFile)
	if err != nil {
		fatal(err)
	}
	raw := []byte{}
	if bodyFile != "" {
		if raw, err = os.ReadFile(bodyFile); err != nil {
			fatal(err)
		}
	}
	transport := &http.Transport{
		TLSClientConfig:     config,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		ForceAttemptHTTP2:   o.http2,
	}
	if !o.http2 {
		transport.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	r := &runner{opts: o, client: &http.Client{Transport: transport, Timeout: 60 * time.Second}}
	r.body = template{parts: bytes.Split(raw, []byte("{{N}}"))}
	run := r.closed
	if o.rate > 0 {
		run = r.paced
	}
	if o.warmup > 0 {
		run(o.start, o.warmup)
		if r.errors.Load() > 0 {
			fatal(fmt.Errorf("warm-up failed: %v", r.firstErr.Load()))
		}
	}
	cpuBefore := cpuSeconds()
	started := time.Now()
	latencies := run(o.start+o.warmup, o.count)
	elapsed := time.Since(started)
	cpu := cpuSeconds() - cpuBefore
	sorted := append([]time.Duration(nil), latencies...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	out := result{
		Requests: o.count, Seconds: elapsed.Seconds(), Errors: r.errors.Load(),
		P50: percentile(sorted, 0.5), P90: percentile(sorted, 0.9), P99: percentile(sorted, 0.99),
		Max: percentile(sorted, 1.0), CPUSeconds: cpu,
	}
	if first, ok := r.firstErr.Load().(string); ok {
		out.FirstError = first
	}
	if latencyFile != "" {
		var text bytes.Buffer
		for _, latency := range latencies {
			fmt.Fprintf(&text, "%.4f\n", float64(latency)/float64(time.Millisecond))
		}
		if err := os.WriteFile(latencyFile, text.Bytes(), 0o644); err != nil {
			fatal(err)
		}
	}
	if err := json.NewEncoder(os.Stdout).Encode(out); err != nil {
		fatal(err)
	}
	if out.Errors > 0 {
		os.Exit(1)
	}
}
