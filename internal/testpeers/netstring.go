package testpeers

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// Netstrings ("len:data,", https://cr.yp.to/proto/netstrings.txt) frame
// baresip's ctrl_tcp messages both ways.

// readNetstring reads one netstring and returns its data.
func readNetstring(r *bufio.Reader) ([]byte, error) {
	head, err := r.ReadString(':')
	if err != nil {
		return nil, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(head[:len(head)-1]))
	if err != nil || n < 0 || n > 1<<20 {
		return nil, fmt.Errorf("bad netstring length %q", head)
	}
	buf := make([]byte, n+1)
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	if buf[n] != ',' {
		return nil, errors.New("netstring without the closing comma")
	}
	return buf[:n], nil
}

// writeNetstring writes data as one netstring in one Write.
func writeNetstring(w io.Writer, data []byte) error {
	_, err := w.Write(fmt.Appendf(nil, "%d:%s,", len(data), data))
	return err
}
