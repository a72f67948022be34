// The little of WebSocket (RFC 6455) the edge stand-in needs: the server's answer to the upgrade request, reading the
// client's masked frames and writing unmasked binary, pong and close frames.
package main

import (
	"bufio"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"sync"
)

const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
	websocketGUID  = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
)

func websocketAccept(key string) string {
	digest := sha1.Sum([]byte(key + websocketGUID))
	return base64.StdEncoding.EncodeToString(digest[:])
}

// readFrame returns the next frame's opcode and unmasked payload.
func readFrame(reader *bufio.Reader) (byte, []byte, error) {
	var head [2]byte
	if _, err := io.ReadFull(reader, head[:]); err != nil {
		return 0, nil, err
	}
	length := uint64(head[1] & 0x7F)
	switch length {
	case 126:
		var extended [2]byte
		if _, err := io.ReadFull(reader, extended[:]); err != nil {
			return 0, nil, err
		}
		length = uint64(binary.BigEndian.Uint16(extended[:]))
	case 127:
		var extended [8]byte
		if _, err := io.ReadFull(reader, extended[:]); err != nil {
			return 0, nil, err
		}
		length = binary.BigEndian.Uint64(extended[:])
	}
	if length > 16<<20 {
		return 0, nil, fmt.Errorf("frame of %d bytes", length)
	}
	var mask [4]byte
	masked := head[1]&0x80 != 0
	if masked {
		if _, err := io.ReadFull(reader, mask[:]); err != nil {
			return 0, nil, err
		}
	}
	payload := make([]byte, length)
	if _, err := io.ReadFull(reader, payload); err != nil {
		return 0, nil, err
	}
	if masked {
		for i := range payload {
			payload[i] ^= mask[i%4]
		}
	}
	return head[0] & 0x0F, payload, nil
}

// frameWriter writes whole frames from any goroutine (the bridge and the pong answers share the connection).
type frameWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (f *frameWriter) write(opcode byte, payload []byte) error {
	head := []byte{0x80 | opcode}
	switch {
	case len(payload) < 126:
		head = append(head, byte(len(payload)))
	case len(payload) <= 0xFFFF:
		head = append(head, 126, byte(len(payload)>>8), byte(len(payload)))
	default:
		head = append(head, 127, 0, 0, 0, 0, 0, 0, 0, 0)
		binary.BigEndian.PutUint64(head[2:], uint64(len(payload)))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, err := f.w.Write(append(head, payload...)); err != nil {
		return err
	}
	return nil
}
