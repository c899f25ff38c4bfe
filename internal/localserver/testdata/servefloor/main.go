// Command servefloor is the floor of `halosync serve`'s pipeline (docs/PERFORMANCE.md, "The
// local pipeline with group commit"): an HTTP server that, for each POSTed ticket delivery,
// decodes the ticket's id and last_update and writes the body under the id with one
// newest-wins SQLite upsert, durable before it answers 200. Concurrent requests' upserts
// are committed together (group commit: one writer takes every upsert waiting, at most
// 256, and commits them in one transaction), with the embedded store's pragmas (WAL,
// synchronous=FULL, immediate transactions). It authenticates nothing, keeps no queue, no
// delivery record, no change event and no counters: the least a durable newest-wins copy
// of a webhook's object needs.
//
// Usage: servefloor DATABASE. It prints "listening on http://ADDR" once it accepts
// connections on a free loopback port, and runs until killed.
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	_ "modernc.org/sqlite"
)

// maxGroup is the store writer's bound on the writes one commit carries.
const maxGroup = 256

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "servefloor:", err)
		os.Exit(1)
	}
}

type upsert struct {
	id      string
	version int64
	body    []byte
	done    chan error
}

func run() error {
	if len(os.Args) != 2 {
		return fmt.Errorf("usage: servefloor DATABASE")
	}
	params := url.Values{
		"_pragma": {"busy_timeout(10000)", "journal_mode(WAL)", "synchronous(FULL)"},
		"_txlock": {"immediate"},
	}
	db, err := sql.Open("sqlite", (&url.URL{Scheme: "file", Path: os.Args[1], RawQuery: params.Encode()}).String())
	if err != nil {
		return err
	}
	db.SetMaxOpenConns(1)
	if _, err := db.Exec(`CREATE TABLE IF NOT EXISTS objects (id TEXT PRIMARY KEY, version INTEGER NOT NULL, body BLOB NOT NULL)`); err != nil {
		return err
	}
	stmt, err := db.Prepare(`INSERT INTO objects (id, version, body) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET version = excluded.version, body = excluded.body
		WHERE excluded.version > objects.version`)
	if err != nil {
		return err
	}
	writes := make(chan upsert)
	go writer(db, stmt, writes)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	fmt.Printf("listening on http://%s\n", ln.Addr())
	return http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var d struct {
			Ticket struct {
				ID         json.Number `json:"id"`
				LastUpdate string      `json:"last_update"`
			} `json:"ticket"`
		}
		if err := json.Unmarshal(body, &d); err != nil || d.Ticket.ID == "" {
			http.Error(w, "not a ticket delivery", http.StatusBadRequest)
			return
		}
		at, err := time.Parse("2006-01-02T15:04:05.999999999", d.Ticket.LastUpdate)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		done := make(chan error, 1)
		writes <- upsert{id: d.Ticket.ID.String(), version: at.UnixNano(), body: body, done: done}
		if err := <-done; err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("content-type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
}

// writer commits every upsert waiting, at most maxGroup, in one transaction, and answers
// each once the commit is on disk.
func writer(db *sql.DB, stmt *sql.Stmt, writes <-chan upsert) {
	ctx := context.Background()
	for {
		group := []upsert{<-writes}
	more:
		for len(group) < maxGroup {
			select {
			case w := <-writes:
				group = append(group, w)
			default:
				break more
			}
		}
		tx, err := db.BeginTx(ctx, nil)
		if err == nil {
			txStmt := tx.StmtContext(ctx, stmt)
			for _, w := range group {
				if err == nil {
					_, err = txStmt.ExecContext(ctx, w.id, w.version, w.body)
				}
			}
			if err == nil {
				err = tx.Commit()
			} else {
				_ = tx.Rollback()
			}
		}
		for _, w := range group {
			w.done <- err
		}
	}
}
