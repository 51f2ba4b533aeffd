package inbound

import (
	"context"
	"net/http"

	"github.com/scimsync/scimsync/store"
)

// deletion is how DELETE removes one kind of resource (rows of T): Users
// and Groups answer alike, and differ only in these.
type deletion[T any] struct {
	get     func(tx *store.Store, ctx context.Context, orgID, id string) (T, error)
	version func(T) int64
	remove  func(tx *store.Store, ctx context.Context, orgID, id string) error
	// record writes the deletion's audit event and outbox row.
	record func(ctx context.Context, tx *store.Store, p principal, row T) error
}

// serve deletes the resource the path names, if it matches If-Match, with
// its record in the same transaction, and answers 204.
func (d deletion[T]) serve(s *Server, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p := principalFrom(ctx)
	id := r.PathValue("id")
	err := s.tx(ctx, func(tx *store.Store) error {
		cur, err := d.get(tx, ctx, p.OrgID, id)
		if err != nil {
			return err
		}
		if err := checkIfMatch(r, d.version(cur)); err != nil {
			return err
		}
		if err := d.remove(tx, ctx, p.OrgID, id); err != nil {
			return err
		}
		return d.record(ctx, tx, p, cur)
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.notify()
	w.WriteHeader(http.StatusNoContent)
}
