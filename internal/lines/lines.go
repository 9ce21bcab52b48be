// Package lines splits a stream written in pieces into whole lines: the
// output of a remote command, or messages written to a view.
package lines

import (
	"bytes"
	"sync"
)

// Writer calls Line with each line written to it, without its newline,
// once the newline has arrived. It is safe for concurrent writers.
type Writer struct {
	Line func(string)

	mu  sync.Mutex
	buf []byte
}

// Write buffers p and passes on every line it completes.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.Line(string(w.buf[:i]))
		w.buf = w.buf[i+1:]
	}
	return len(p), nil
}

// Flush passes on what is left after the last newline, if anything.
func (w *Writer) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.buf) > 0 {
		w.Line(string(w.buf))
		w.buf = nil
	}
}
