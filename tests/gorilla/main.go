// A gorilla/websocket client with compression, for the interop test
// (tests/asyncio/test_aio_gorilla.py): connects to the URL given as its
// argument, negotiates permessage-deflate (gorilla offers no context
// takeover both ways and refuses a response that does not repeat
// client_no_context_takeover), sends text and binary messages of several
// sizes compressed, checks that each echo is the same, closes with 1000 and
// prints "ok N" with the number of messages echoed.
package main

import (
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
	os.Exit(1)
}

func text(size int, r *rand.Rand) []byte {
	var b strings.Builder
	for b.Len() < size {
		fmt.Fprintf(&b, `{"id":%d,"name":"naïve café ✓ %d"},`, r.Intn(1000), r.Intn(1000000))
	}
	// Cut at a rune boundary at or below size.
	s := []rune(b.String())
	out := []byte(string(s))
	for len(out) > size {
		s = s[:len(s)-1]
		out = []byte(string(s))
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		fail("usage: gorilla URL")
	}
	// A 64 KiB write buffer: a large message goes out in frames of 64 KiB,
	// which fastws assembles as they arrive.
	dialer := websocket.Dialer{
		EnableCompression: true,
		HandshakeTimeout:  10 * time.Second,
		WriteBufferSize:   64 << 10,
	}
	conn, resp, err := dialer.Dial(os.Args[1], nil)
	if err != nil {
		fail("connect: %v", err)
	}
	defer conn.Close()
	ext := resp.Header.Get("Sec-WebSocket-Extensions")
	if !strings.Contains(ext, "permessage-deflate") {
		fail("permessage-deflate not negotiated: %q", ext)
	}
	conn.EnableWriteCompression(true)
	if err := conn.SetReadDeadline(time.Now().Add(20 * time.Second)); err != nil {
		fail("deadline: %v", err)
	}
	r := rand.New(rand.NewSource(1))
	count := 0
	for _, size := range []int{1, 200, 1 << 10, 16 << 10, 70 << 10, 300 << 10, 1 << 20} {
		for _, kind := range []int{websocket.TextMessage, websocket.BinaryMessage} {
			var msg []byte
			if kind == websocket.TextMessage {
				msg = text(size, r)
			} else {
				msg = make([]byte, size)
				// Half random, half repeated: compressible, but not trivially.
				r.Read(msg[:size/2])
				copy(msg[size/2:], bytes.Repeat([]byte("binary\x00\xff"), size/8+1))
			}
			for level := 1; level <= 9; level += 8 {
				if err := conn.SetCompressionLevel(level); err != nil {
					fail("level: %v", err)
				}
				if err := conn.WriteMessage(kind, msg); err != nil {
					fail("send %d bytes: %v", len(msg), err)
				}
				got, data, err := conn.ReadMessage()
				if err != nil {
					fail("echo of %d bytes: %v", len(msg), err)
				}
				if got != kind || !bytes.Equal(data, msg) {
					fail("wrong echo of %d bytes (type %d): type %d, %d bytes", len(msg), kind, got, len(data))
				}
				count++
			}
		}
	}
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "")
	if err := conn.WriteMessage(websocket.CloseMessage, msg); err != nil {
		fail("close: %v", err)
	}
	if _, _, err := conn.ReadMessage(); !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
		fail("close: expected 1000, got %v", err)
	}
	fmt.Printf("ok %d\n", count)
}
