package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/halosync/halosync/internal/message"
)

// The messages a send hands to this process's consumer (see handoff) are kept on disk in
// the hand-off log rather than in the queues' table: a send appends its messages to the
// log, and its answer waits for the fsync that takes every append made meanwhile; a
// delete only notes the message gone in memory and adds a mark, which the next group
// takes along (or, without one, a write of its own after markDelay). A table row costs a
// b-tree insert and delete and their pages in the WAL; an append costs the message's
// bytes (docs/PERFORMANCE.md, "Sixth pass").
//
// A handed message leaves the log for the table when it is not simply deleted: put back
// (not received in time, or the consumer stopped), its visibility changed, or its
// visibility timeout over before a delete. It is inserted with its seq, so its receipt
// handle stays valid; the log notes it gone once the insert is on disk.
//
// The log is files beside the queues' file, halosync.queue.handed.<n>.log, a new one
// once the last holds handedSegmentBytes; once every message in a file and in the files
// before it is gone, the file is kept to be written again as a later one (newSegment) or
// removed. Claim reads what a previous process left: every message not marked gone is
// inserted into the table, visible, as Claim makes every message in flight visible. A
// mark lost to a crash only delivers its message again, which at-least-once delivery
// allows; a torn record at a file's end was never acknowledged.

const (
	handedSegmentBytes = 4 << 20
	// handedSeqBlock is how many seqs of the queues' table one reservation sets aside for
	// handed messages, so that a message keeps its seq when it moves to the table.
	handedSeqBlock = 1 << 16
)

// Record kinds of the hand-off log.
const (
	recordMessage byte = 'm'
	recordGone    byte = 'g'
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// handedLog is the hand-off log of a claimed database. It is safe for concurrent use.
type handedLog struct {
	prefix string // its files are prefix + <n> + ".log"
	// segmentBytes is the size of its files (handedSegmentBytes): once one holds as
	// much, the next write goes to a new one.
	segmentBytes int64
	// reserve sets n seqs of the queues' table aside and returns the first.
	reserve func(ctx context.Context, n int64) (int64, error)

	appends chan *logAppend
	marking chan struct{} // a mark waits where none did: the writer's idle wait starts
	closed  chan struct{}
	done    chan struct{} // the writer has ended
	once    sync.Once

	seqMu            sync.Mutex
	nextSeq, lastSeq int64 // the seqs reserved and not used yet: nextSeq..lastSeq

	mu        sync.Mutex
	entries   map[int64]*handedEntry // by seq: on disk, not gone
	segments  []*logSegment          // oldest first; the last is written to
	spares    []*logSegment          // settled files, to be written again (newSegment)
	made      int                    // number of the newest segment made
	marks     []byte                 // gone records for the next write
	err       error                  // the first failed write: the log takes no more messages
	recovered []string               // files read at open, removed once their messages are in the table
}

// logSegment is one file of the log.
type logSegment struct {
	n    int // its number, in its name and its records' checksums
	path string
	f    *os.File
	size int64 // written so far
	live int   // its messages not gone
}

// handedEntry is a message in the log, as handed to the consumer.
type handedEntry struct {
	message.Received
	seq       int64  // its place in the queue, as a table row's
	token     string // of its receipt handle
	queue     string
	attrs     sql.NullString // as the table stores them
	visibleAt time.Time      // when its visibility timeout, counted from the send, ends
	seg       *logSegment
	taken     bool // received through the hand-off
	moving    bool // being inserted into the table
}

// logAppend is one send's records, waiting for the log's writer.
type logAppend struct {
	buf     []byte
	entries []*handedEntry
	done    chan error
}

// handedLogPrefix is the start of the names of the hand-off log's files of the queues'
// file at queuePath.
func handedLogPrefix(queuePath string) string {
	return strings.TrimSuffix(queuePath, filepath.Ext(queuePath)) + ".handed."
}

// openHandedLog opens the hand-off log of the queues' file at queuePath and returns the
// messages a previous process left in it, not marked gone, by seq. Their files stay until
// dropRecovered, to be called once they are in the table.
func openHandedLog(queuePath string, reserve func(ctx context.Context, n int64) (int64, error)) (*handedLog, []*handedEntry, error) {
	l := &handedLog{prefix: handedLogPrefix(queuePath), segmentBytes: handedSegmentBytes, reserve: reserve,
		appends: make(chan *logAppend), marking: make(chan struct{}, 1), closed: make(chan struct{}), done: make(chan struct{}),
		entries: map[int64]*handedEntry{}}
	dir := filepath.Dir(l.prefix)
	names, err := os.ReadDir(dir)
	if err != nil {
		return nil, nil, fmt.Errorf("read the hand-off log: %w", err)
	}
	type file struct {
		n    int
		path string
	}
	var files []file
	base := filepath.Base(l.prefix)
	for _, d := range names {
		num, ok := strings.CutPrefix(d.Name(), base)
		if !ok {
			continue
		}
		if num, ok = strings.CutSuffix(num, ".log"); !ok {
			continue
		}
		if n, err := strconv.Atoi(num); err == nil && n > 0 {
			files = append(files, file{n, filepath.Join(dir, d.Name())})
		}
	}
	slices.SortFunc(files, func(a, b file) int { return a.n - b.n })
	left := map[int64]*handedEntry{}
	for _, f := range files {
		b, err := os.ReadFile(f.path)
		if err != nil {
			return nil, nil, fmt.Errorf("read the hand-off log: %w", err)
		}
		readRecords(b, f.n, left)
		l.made = max(l.made, f.n)
		l.recovered = append(l.recovered, f.path)
	}
	out := make([]*handedEntry, 0, len(left))
	for _, e := range left {
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b *handedEntry) int { return cmp.Compare(a.seq, b.seq) })
	go l.writer()
	return l, out, nil
}

// dropRecovered removes the files openHandedLog read.
func (l *handedLog) dropRecovered() error {
	l.mu.Lock()
	files := l.recovered
	l.recovered = nil
	l.mu.Unlock()
	var errs []error
	for _, p := range files {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if len(files) > 0 {
		errs = append(errs, syncDir(filepath.Dir(l.prefix)))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("remove the hand-off log read: %w", err)
	}
	return nil
}

// close writes the marks not written yet and closes the log's files; what is in them is
// read at the next open.
func (l *handedLog) close() error {
	l.once.Do(func() { close(l.closed) })
	<-l.done
	l.mu.Lock()
	defer l.mu.Unlock()
	var errs []error
	for _, s := range l.segments {
		errs = append(errs, s.f.Close())
	}
	for _, s := range l.spares {
		errs = append(errs, s.f.Close(), os.Remove(s.path))
	}
	l.segments, l.spares = nil, nil
	return errors.Join(errs...)
}

// seqs takes n consecutive seqs for a send's messages, reserving a block in the table
// when the last one is used up.
func (l *handedLog) seqs(ctx context.Context, n int) (int64, error) {
	l.seqMu.Lock()
	defer l.seqMu.Unlock()
	if l.lastSeq-l.nextSeq+1 < int64(n) {
		first, err := l.reserve(ctx, handedSeqBlock)
		if err != nil {
			return 0, err
		}
		l.nextSeq, l.lastSeq = first, first+handedSeqBlock-1
	}
	first := l.nextSeq
	l.nextSeq += int64(n)
	return first, nil
}

// usable tells whether the log takes messages: it has not failed.
func (l *handedLog) usable() bool {
	if l == nil {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err == nil
}

// append writes entries (their seq, message and queue set) to the log and returns once
// they are on disk, or not at all; they are then the log's, until gone.
func (l *handedLog) append(ctx context.Context, entries []*handedEntry) error {
	size := 0
	for _, e := range entries {
		size += 64 + len(e.queue) + len(e.ID) + len(e.attrs.String) + len(e.Body)
	}
	buf := make([]byte, 0, size)
	for _, e := range entries {
		buf = appendMessageRecord(buf, e)
	}
	a := &logAppend{buf: buf, entries: entries, done: make(chan error, 1)}
	select {
	case l.appends <- a:
	case <-ctx.Done():
		return ctx.Err()
	case <-l.closed:
		return ErrClosed
	}
	return <-a.done
}

// writer writes the appends in groups until the log is closed, then the marks left
// (markDelay: also when no send comes to take them along); each
// group is every append waiting when the last group's fsync ended (at most
// maxLogGroup), written with one write and one fsync, as the group commit of the
// queues' file before it. A group does not wait for more appends: the fsync is the
// group's only cost, and a wait lengthens every send (docs/PERFORMANCE.md, "Sixth pass").
func (l *handedLog) writer() {
	defer close(l.done)
	idle := time.NewTimer(time.Hour)
	idle.Stop()
	for {
		var group []*logAppend
		var marked <-chan time.Time
		if l.marked() {
			idle.Reset(markDelay)
			marked = idle.C
		}
		select {
		case a := <-l.appends:
			group = append(group, a)
		case <-marked:
			_ = l.write(nil)
			continue
		case <-l.marking:
			continue
		case <-l.closed:
			_ = l.write(nil)
			return
		}
		idle.Stop()
	more:
		for len(group) < maxLogGroup {
			select {
			case a := <-l.appends:
				group = append(group, a)
			default:
				break more
			}
		}
		err := l.write(group)
		for _, a := range group {
			a.done <- err
		}
	}
}

// maxLogGroup bounds the appends one write of the log carries.
const maxLogGroup = 256

// markDelay is how long marks wait for a send to write them with before they are written
// alone: a mark lost to a crash delivers its message again, so a server that goes quiet
// after a burst does not leave the burst's marks unwritten.
const markDelay = 100 * time.Millisecond

// marked tells whether marks wait to be written.
func (l *handedLog) marked() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.marks) > 0 && l.err == nil
}

// write writes the marks waiting and group's records to the newest segment, starting a
// new one when it is full, and syncs it; then group's entries are the log's.
func (l *handedLog) write(group []*logAppend) error {
	l.mu.Lock()
	if l.err != nil {
		err := l.err
		l.mu.Unlock()
		return err
	}
	buf := l.marks
	l.marks = nil
	var seg *logSegment
	if n := len(l.segments); n > 0 && l.segments[n-1].size < l.segmentBytes {
		seg = l.segments[n-1] // a group may take it past its size: the file grows
	}
	l.mu.Unlock()
	if group == nil && len(buf) == 0 {
		return nil
	}
	for _, a := range group {
		buf = append(buf, a.buf...)
	}
	var err error
	if seg == nil {
		seg, err = l.newSegment()
	}
	if err == nil {
		saltRecords(buf, seg.n)
		if _, err = seg.f.WriteAt(buf, seg.size); err == nil {
			err = seg.f.Sync()
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.err = fmt.Errorf("write the hand-off log: %w", err)
		return l.err
	}
	seg.size += int64(len(buf))
	for _, a := range group {
		for _, e := range a.entries {
			e.seg = seg
			seg.live++
			l.entries[e.seq] = e
		}
	}
	l.removeSettled()
	return nil
}

// newSegment makes the next file of the log: a spare renamed, or a new file filled with
// zeros. Writing over a file's bytes, rather than past its end, spares each fsync the
// file's size, which is most of its time (docs/PERFORMANCE.md, "Sixth pass"). The
// file's name is on disk before it is written to.
func (l *handedLog) newSegment() (*logSegment, error) {
	l.mu.Lock()
	l.made++
	n := l.made
	path := l.prefix + strconv.Itoa(n) + ".log"
	var seg *logSegment
	if k := len(l.spares); k > 0 {
		seg, l.spares = l.spares[k-1], l.spares[:k-1]
	}
	l.mu.Unlock()
	if seg != nil {
		if err := os.Rename(seg.path, path); err != nil {
			_ = seg.f.Close()
			_ = os.Remove(seg.path)
			seg = nil
		}
	}
	if seg == nil {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if _, err = f.Write(make([]byte, l.segmentBytes)); err == nil {
			err = f.Sync()
		}
		if err != nil {
			_ = f.Close()
			_ = os.Remove(path)
			return nil, err
		}
		seg = &logSegment{f: f}
	}
	if err := syncDir(filepath.Dir(path)); err != nil {
		_ = seg.f.Close()
		return nil, err
	}
	seg.n, seg.path, seg.size, seg.live = n, path, 0, 0
	l.mu.Lock()
	l.segments = append(l.segments, seg)
	l.mu.Unlock()
	return seg, nil
}

// maxSpares is how many settled files the log keeps to write again.
const maxSpares = 2

// removeSettled retires the oldest segments while every message in them is gone, but
// never the newest, which is written to; l.mu held. A retired file is kept as a spare,
// its first record overwritten so that it holds nothing once read at an open, or
// removed. A file whose retirement fails is read again at the next open, where its
// messages' marks, in it or after it, leave nothing to recover.
func (l *handedLog) removeSettled() {
	for len(l.segments) > 1 && l.segments[0].live == 0 {
		s := l.segments[0]
		l.segments = l.segments[1:]
		if len(l.spares) < maxSpares {
			if _, err := s.f.WriteAt(make([]byte, 8), 0); err == nil {
				l.spares = append(l.spares, s)
				continue
			}
		}
		_ = s.f.Close()
		_ = os.Remove(s.path)
	}
}

// gone notes entry e gone from the log; l.mu held.
func (l *handedLog) gone(e *handedEntry) {
	delete(l.entries, e.seq)
	e.seg.live--
	if len(l.marks) == 0 {
		select {
		case l.marking <- struct{}{}:
		default: // the writer is told already
		}
	}
	l.marks = appendGoneRecord(l.marks, e.seq)
	l.removeSettled()
}

// take marks e received through the hand-off; false when it has left the log meanwhile.
func (l *handedLog) take(e *handedEntry) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries[e.seq] != e || e.moving {
		return false
	}
	e.taken = true
	return true
}

// delete removes message seq of queue, received with token: found tells whether the log
// holds seq for queue (else the table may), deleted whether token was its receipt.
func (l *handedLog) delete(queue string, seq int64, token string) (found, deleted bool) {
	if l == nil {
		return false, false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[seq]
	if e == nil || e.moving || e.queue != queue {
		return false, false
	}
	if !e.taken || e.token != token {
		return true, false
	}
	l.gone(e)
	return true, true
}

// received is message seq of queue when the log holds it and token is its receipt,
// marked moving; nil otherwise.
func (l *handedLog) received(queue string, seq int64, token string) *handedEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries[seq]
	if e == nil || e.moving || e.queue != queue || !e.taken || e.token != token {
		return nil
	}
	e.moving = true
	return e
}

// expired returns queue's messages whose visibility timeout has ended at now, marked
// moving, and when the next of the others' ends (zero: none).
func (l *handedLog) expired(queue string, now time.Time) (out []*handedEntry, next time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.entries {
		switch {
		case e.queue != queue || e.moving:
		case !now.Before(e.visibleAt):
			e.moving = true
			out = append(out, e)
		case next.IsZero() || e.visibleAt.Before(next):
			next = e.visibleAt
		}
	}
	slices.SortFunc(out, func(a, b *handedEntry) int { return cmp.Compare(a.seq, b.seq) })
	return out, next
}

// claimMoving marks those of es still in the log moving and returns them.
func (l *handedLog) claimMoving(es []*handedEntry) []*handedEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := es[:0:0]
	for _, e := range es {
		if l.entries[e.seq] == e && !e.moving {
			e.moving = true
			out = append(out, e)
		}
	}
	return out
}

// moved ends the move of es into the table: gone when the insert is on disk (err nil),
// else back in the log.
func (l *handedLog) moved(es []*handedEntry, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range es {
		e.moving = false
		if err == nil {
			l.gone(e)
		}
	}
}

// inFlight counts queue's messages in the log: all are in flight, as the table's
// received messages are.
func (l *handedLog) inFlight(queue string) int {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.entries {
		if e.queue == queue { // moving too: not in the table before the move ends
			n++
		}
	}
	return n
}

// A record is its payload's length and CRC-32C XORed with its segment's salt (4 bytes
// each, little-endian), then the payload: its kind, then for a message its seq and sent time (Unix ms), 8 bytes each, its
// queue, id and attributes, each a uvarint length and the bytes, then its body; for a gone
// mark the seq.

func appendRecordHead(b []byte, kind byte) ([]byte, int) {
	start := len(b)
	return append(b, 0, 0, 0, 0, 0, 0, 0, 0, kind), start
}

func sealRecord(b []byte, start int) []byte {
	payload := b[start+8:]
	binary.LittleEndian.PutUint32(b[start:], uint32(len(payload)))
	binary.LittleEndian.PutUint32(b[start+4:], crc32.Checksum(payload, castagnoli))
	return b
}

func appendMessageRecord(b []byte, e *handedEntry) []byte {
	b, start := appendRecordHead(b, recordMessage)
	b = binary.LittleEndian.AppendUint64(b, uint64(e.seq))
	b = binary.LittleEndian.AppendUint64(b, uint64(e.SentAt.UnixMilli()))
	for _, s := range []string{e.queue, e.ID, e.attrs.String} {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	b = append(b, e.Body...)
	return sealRecord(b, start)
}

// segmentSalt is what a record's checksum is XORed with in segment n.
func segmentSalt(n int) uint32 { return uint32(n) * 0x9e3779b1 }

// saltRecords XORs the checksum of every record in b with segment n's salt.
func saltRecords(b []byte, n int) {
	salt := segmentSalt(n)
	for len(b) >= 8 {
		size := int(binary.LittleEndian.Uint32(b))
		binary.LittleEndian.PutUint32(b[4:], binary.LittleEndian.Uint32(b[4:])^salt)
		b = b[8+size:]
	}
}

func appendGoneRecord(b []byte, seq int64) []byte {
	b, start := appendRecordHead(b, recordGone)
	b = binary.LittleEndian.AppendUint64(b, uint64(seq))
	return sealRecord(b, start)
}

// readRecords applies the records in b, segment's, to left: a message is added, a gone
// mark removes its message. It stops at the first record cut short or not matching its
// checksum salted with the segment's number: the end of what was written to the file
// since it became that segment, followed by zeros or by an earlier segment's records.
func readRecords(b []byte, segment int, left map[int64]*handedEntry) {
	salt := segmentSalt(segment)
	for len(b) >= 8 {
		n := int(binary.LittleEndian.Uint32(b))
		if n < 9 || n > len(b)-8 || crc32.Checksum(b[8:8+n], castagnoli)^salt != binary.LittleEndian.Uint32(b[4:]) {
			return
		}
		p := b[8 : 8+n]
		b = b[8+n:]
		seq := int64(binary.LittleEndian.Uint64(p[1:]))
		switch p[0] {
		case recordGone:
			delete(left, seq)
		case recordMessage:
			if e, ok := decodeMessageRecord(p); ok {
				left[seq] = e
			}
		}
	}
}

func decodeMessageRecord(p []byte) (*handedEntry, bool) {
	if len(p) < 17 {
		return nil, false
	}
	e := &handedEntry{}
	e.seq = int64(binary.LittleEndian.Uint64(p[1:]))
	e.SentAt = time.UnixMilli(int64(binary.LittleEndian.Uint64(p[9:]))).UTC()
	p = p[17:]
	var fields [3]string
	for i := range fields {
		n, k := binary.Uvarint(p)
		if k <= 0 || n > uint64(len(p)-k) {
			return nil, false
		}
		fields[i] = string(p[k : k+int(n)])
		p = p[k+int(n):]
	}
	e.queue, e.ID = fields[0], fields[1]
	if fields[2] != "" {
		e.attrs = sql.NullString{String: fields[2], Valid: true}
	}
	e.Body = append([]byte{}, p...)
	return e, true
}
