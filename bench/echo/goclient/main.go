// Compressing load generator for the echo benchmark: gorilla/websocket clients
// with permessage-deflate (what gorilla offers: no context takeover on both
// sides), the counterpart of loadgen.py (picows, which cannot compress).
//
// Each of -connections connections keeps -inflight text messages of -size
// bytes (JSON-like, compressible) in flight: it sends that many, then one
// more for each echo received. After -warmup seconds it counts the echoes for
// -duration seconds, records each round-trip time and reads the server's CPU
// time (/proc/PID/stat utime+stime) at both ends of the window. Prints one
// JSON line with the same keys as loadgen.py.
//
// gorilla refuses a response that does not repeat client_no_context_takeover
// (aiohttp's does not): -add-client-nct adds it to the response before gorilla
// reads it, which is true to what the client does (gorilla always resets its
// compressor after each message).
//
// Built by tools/gobuild.py (GOPATH mode, with the gorilla package from the
// system, no network).
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// clkTck is USER_HZ, 100 on every Linux platform Go runs on.
const clkTck = 100

func cpuSeconds(pid int) float64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseFloat(fields[11], 64)
	stime, _ := strconv.ParseFloat(fields[12], 64)
	return (utime + stime) / clkTck
}

// payload returns size bytes of JSON-like text, the same for every run.
func payload(size int) []byte {
	r := rand.New(rand.NewSource(1))
	words := []string{"alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel"}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, `{"id":%d,"user":"user-%d","score":%.4f,"tag":"%s","active":%t},`,
			i, r.Intn(100000), r.Float64()*100, words[r.Intn(len(words))], r.Intn(2) == 1)
	}
	out := b.Bytes()[:size]
	out[size-1] = ']'
	return out
}

// nctConn adds client_no_context_takeover to the permessage-deflate
// response header it reads, then passes the bytes through unchanged.
type nctConn struct {
	net.Conn
	head []byte // the response head being collected
	rest []byte // bytes to hand out before reading the connection again
	done bool
}

func (c *nctConn) Read(p []byte) (int, error) {
	for !c.done {
		buf := make([]byte, 4096)
		n, err := c.Conn.Read(buf)
		c.head = append(c.head, buf[:n]...)
		if end := bytes.Index(c.head, []byte("\r\n\r\n")); end >= 0 {
			head := string(c.head[:end])
			lines := strings.Split(head, "\r\n")
			for i, line := range lines {
				name := strings.ToLower(strings.SplitN(line, ":", 2)[0])
				if name == "sec-websocket-extensions" &&
					!strings.Contains(line, "client_no_context_takeover") {
					lines[i] = line + "; client_no_context_takeover"
				}
			}
			c.rest = append([]byte(strings.Join(lines, "\r\n")), c.head[end:]...)
			c.head = nil
			c.done = true
			break
		}
		if err != nil {
			return 0, err
		}
	}
	if len(c.rest) > 0 {
		n := copy(p, c.rest)
		c.rest = c.rest[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

type state struct {
	measuring atomic.Bool
	running   atomic.Bool
	count     atomic.Int64
	mu        sync.Mutex
	latencies []int64
	errors    atomic.Int64
	firstErr  atomic.Value
}

func (s *state) fail(err error) {
	if s.running.Load() && s.errors.Add(1) == 1 {
		s.firstErr.Store(err.Error())
	}
}

func client(conn *websocket.Conn, st *state, msg []byte, inflight int, done *sync.WaitGroup) {
	defer done.Done()
	stamps := make(chan time.Time, inflight)
	tokens := make(chan struct{}, inflight)
	for i := 0; i < inflight; i++ {
		tokens <- struct{}{}
	}
	go func() { // writer
		for range tokens {
			if !st.running.Load() {
				return
			}
			stamps <- time.Now()
			if err := conn.WriteMessage(websocket.TextMessage, msg); err != nil {
				st.fail(err)
				return
			}
		}
	}()
	var local []int64
	checked := false
	for {
		kind, data, err := conn.ReadMessage()
		if err != nil {
			if st.running.Load() {
				st.fail(err)
			}
			break
		}
		if kind != websocket.TextMessage || len(data) != len(msg) ||
			(!checked && !bytes.Equal(data, msg)) {
			st.fail(fmt.Errorf("wrong echo: type %d, %d bytes", kind, len(data)))
			break
		}
		checked = true
		started := <-stamps
		if st.measuring.Load() {
			st.count.Add(1)
			local = append(local, time.Since(started).Nanoseconds())
		}
		if !st.running.Load() {
			if len(stamps) == 0 {
				break
			}
			continue
		}
		tokens <- struct{}{}
	}
	close(tokens)
	st.mu.Lock()
	st.latencies = append(st.latencies, local...)
	st.mu.Unlock()
}

func percentile(sorted []int64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q * float64(len(sorted)))
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return float64(sorted[i]) / 1000.0
}

func round(v float64, digits int) float64 {
	p, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'f', digits, 64), 64)
	return p
}

func main() {
	url := flag.String("url", "", "ws:// URL of the echo server")
	pid := flag.Int("server-pid", 0, "pid of the server (for its CPU time)")
	connections := flag.Int("connections", 1, "connections")
	inflight := flag.Int("inflight", 1, "messages in flight per connection")
	size := flag.Int("size", 1024, "message size in bytes")
	duration := flag.Float64("duration", 4, "seconds measured")
	warmup := flag.Float64("warmup", 0.5, "seconds before measuring")
	level := flag.Int("level", 1, "client compression level (gorilla's default: 1)")
	addNct := flag.Bool("add-client-nct", false,
		"add client_no_context_takeover to the server's response (for servers that do not repeat it)")
	flag.Parse()
	msg := payload(*size)

	dialer := websocket.Dialer{
		EnableCompression: true,
		HandshakeTimeout:  10 * time.Second,
		ReadBufferSize:    64 << 10,
		WriteBufferSize:   64 << 10,
	}
	if *addNct {
		dialer.NetDial = func(network, addr string) (net.Conn, error) {
			conn, err := net.Dial(network, addr)
			if err != nil {
				return nil, err
			}
			return &nctConn{Conn: conn}, nil
		}
	}
	st := &state{}
	st.running.Store(true)
	conns := make([]*websocket.Conn, 0, *connections)
	for i := 0; i < *connections; i++ {
		conn, resp, err := dialer.Dial(*url, http.Header{})
		if err != nil {
			fmt.Fprintln(os.Stderr, "connect:", err)
			os.Exit(1)
		}
		if !strings.Contains(resp.Header.Get("Sec-WebSocket-Extensions"), "permessage-deflate") {
			fmt.Fprintln(os.Stderr, "connect: the server did not accept permessage-deflate")
			os.Exit(1)
		}
		conn.EnableWriteCompression(true)
		if err := conn.SetCompressionLevel(*level); err != nil {
			fmt.Fprintln(os.Stderr, "compression level:", err)
			os.Exit(1)
		}
		conns = append(conns, conn)
	}
	var done sync.WaitGroup
	for _, conn := range conns {
		done.Add(1)
		go client(conn, st, msg, *inflight, &done)
	}
	time.Sleep(time.Duration(*warmup * float64(time.Second)))
	st.measuring.Store(true)
	cpu0 := cpuSeconds(*pid)
	t0 := time.Now()
	time.Sleep(time.Duration(*duration * float64(time.Second)))
	st.measuring.Store(false)
	elapsed := time.Since(t0).Seconds()
	cpu1 := cpuSeconds(*pid)
	msgs := st.count.Load()
	st.running.Store(false)
	finished := make(chan struct{})
	go func() { done.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Second):
	}
	for _, conn := range conns {
		deadline := time.Now().Add(time.Second)
		_ = conn.WriteControl(websocket.CloseMessage,
			websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), deadline)
		conn.Close()
	}
	if n := st.errors.Load(); n > 0 {
		fmt.Fprintf(os.Stderr, "%d connection(s) failed, first: %v\n", n, st.firstErr.Load())
		os.Exit(1)
	}
	sort.Slice(st.latencies, func(i, j int) bool { return st.latencies[i] < st.latencies[j] })
	result := map[string]any{
		"connections":  *connections,
		"inflight":     *inflight,
		"size":         *size,
		"seconds":      round(elapsed, 3),
		"messages":     msgs,
		"msgs_per_s":   round(float64(msgs)/elapsed, 1),
		"mbytes_per_s": round(float64(msgs)*float64(*size)/elapsed/1e6, 2),
		"p50_us":       round(percentile(st.latencies, 0.50), 1),
		"p99_us":       round(percentile(st.latencies, 0.99), 1),
		"server_cpu_s": round(cpu1-cpu0, 3),
	}
	if msgs > 0 {
		result["server_cpu_us_per_msg"] = round((cpu1-cpu0)/float64(msgs)*1e6, 2)
	} else {
		result["server_cpu_us_per_msg"] = nil
	}
	out, _ := json.Marshal(result)
	fmt.Println(string(out))
}
