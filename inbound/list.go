package inbound

import (
	"context"
	"net/http"

	"github.com/scimsync/scimsync/inbound/filter"
	"github.com/scimsync/scimsync/inbound/project"
	"github.com/scimsync/scimsync/inbound/schema"
)

// lister answers GET on a collection for one kind of resource (rows of T).
type lister[T any] struct {
	rt *schema.ResourceType
	// byIndex answers an equality filter on an indexed attribute; ok is
	// false when the attribute has no index for this resource type.
	byIndex func(ctx context.Context, orgID, attr, value string) (rows []T, ok bool, err error)
	// byIndexJoined, when set, is byIndex that also renders the rows with
	// the joined attribute, in one query.
	byIndexJoined func(ctx context.Context, orgID, attr, value string) (rows []T, res []map[string]any, ok bool, err error)
	page          func(ctx context.Context, orgID string, offset, limit int) ([]T, int64, error)
	each          func(ctx context.Context, orgID string, fn func(T) error) error
	// resource renders one row without the joined attribute.
	resource func(T) (map[string]any, error)
	// join adds the joined attribute to rendered rows, with one query for
	// them all.
	join func(ctx context.Context, orgID string, rows []T, res []map[string]any) error
	// joined is the attribute that costs a query to render ("groups" of a
	// user, "members" of a group): added only when the response keeps it
	// or a filter names it.
	joined string
	// zero is the joined attribute's value when it is known to be empty;
	// nil leaves the attribute out.
	zero any
	// ref names a row: its id, organization and version.
	ref func(T) (id, org string, version int64)
}

// respond writes one resource, projected as the query asks, with its ETag
// (and Location when created). empty says the joined attribute is known to
// be empty, as for a resource just created without it, so it is not looked
// up.
func (l *lister[T]) respond(s *Server, w http.ResponseWriter, r *http.Request, status int, row T, empty bool) {
	l.respondWith(s, w, r, status, row, func(proj *project.Projection) (map[string]any, error) {
		_, org, _ := l.ref(row)
		res, err := l.resource(row)
		switch {
		case err != nil || !proj.Returns(l.joined):
		case empty:
			if l.zero != nil {
				res[l.joined] = l.zero
			}
		default:
			err = l.join(r.Context(), org, []T{row}, []map[string]any{res})
		}
		return res, err
	})
}

// respondRendered is respond for a resource already rendered with its
// joined attribute.
func (l *lister[T]) respondRendered(s *Server, w http.ResponseWriter, r *http.Request, status int, row T, res map[string]any) {
	l.respondWith(s, w, r, status, row, func(*project.Projection) (map[string]any, error) { return res, nil })
}

func (l *lister[T]) respondWith(s *Server, w http.ResponseWriter, r *http.Request, status int, row T, render func(*project.Projection) (map[string]any, error)) {
	proj, err := l.projection(r)
	var res map[string]any
	if err == nil {
		res, err = render(proj)
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	id, _, version := l.ref(row)
	w.Header().Set("ETag", etag(version))
	if status == http.StatusCreated {
		w.Header().Set("Location", s.baseURL()+l.rt.Endpoint+"/"+id)
	}
	s.write(w, status, proj.Apply(res))
}

// projection reads the query's attributes and excludedAttributes.
func (l *lister[T]) projection(r *http.Request) (*project.Projection, error) {
	q := r.URL.Query()
	return project.New(l.rt, q.Get("attributes"), q.Get("excludedAttributes"))
}

// render renders rows, joining when asked.
func (l *lister[T]) render(ctx context.Context, org string, rows []T, join bool) ([]map[string]any, error) {
	out := make([]map[string]any, len(rows))
	for i, row := range rows {
		m, err := l.resource(row)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	if join && len(rows) > 0 {
		if err := l.join(ctx, org, rows, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (l *lister[T]) serve(s *Server, w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	org := principalFrom(ctx).OrgID
	q := r.URL.Query()
	start, count, err := paging(q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	proj, err := l.projection(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	var expr filter.Expr
	if f := q.Get("filter"); f != "" {
		if expr, err = filter.Parse(f, l.rt); err != nil {
			s.fail(w, r, err)
			return
		}
	}

	wantJoined := proj.Returns(l.joined)
	var res []map[string]any
	total := 0
	switch {
	case expr == nil:
		rows, n, err := l.page(ctx, org, start-1, count)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if res, err = l.render(ctx, org, rows, wantJoined); err != nil {
			s.fail(w, r, err)
			return
		}
		total = int(n)
	default:
		// Matching already rendered the page; join only what it left out.
		var rows []T
		var joined bool
		rows, res, total, joined, err = l.filtered(ctx, org, expr, start, count, wantJoined)
		if err == nil && wantJoined && !joined && len(rows) > 0 {
			err = l.join(ctx, org, rows, res)
		}
		if err != nil {
			s.fail(w, r, err)
			return
		}
	}
	items := make([]any, len(res))
	for i, m := range res {
		items[i] = proj.Apply(m)
	}
	s.write(w, http.StatusOK, newList(total, start, items))
}

// filtered evaluates expr: by index when it is one equality on an indexed
// attribute, else by scanning the organization's resources in list order.
// Either way every candidate is checked against the whole filter. It
// returns the page's rows with their renderings, the number of matches,
// and whether the renderings carry the joined attribute. want says the
// response shows the joined attribute, so an index lookup that can read it
// in the same query does.
func (l *lister[T]) filtered(ctx context.Context, org string, expr filter.Expr, start, count int, want bool) (page []T, res []map[string]any, total int, joined bool, err error) {
	needed := mentions(expr, l.joined) // matching reads it
	if attr, value, ok := filter.IndexedEq(expr); ok {
		cands, rendered, indexed, joined, err := l.lookup(ctx, org, attr, value, needed, want)
		if err != nil {
			return nil, nil, 0, false, err
		}
		if indexed {
			for i, m := range rendered {
				if filter.Match(expr, m) {
					page, res = append(page, cands[i]), append(res, m)
				}
			}
			// The e-mail index holds one address per user; a miss there
			// may still match another of the user's addresses.
			if len(page) > 0 || attr != filter.IndexedEmail {
				lo, hi := window(len(page), start, count)
				return page[lo:hi], res[lo:hi], len(page), joined, nil
			}
			page, res = nil, nil
		}
	}
	err = l.each(ctx, org, func(row T) error {
		rendered, err := l.render(ctx, org, []T{row}, needed)
		if err != nil || !filter.Match(expr, rendered[0]) {
			return err
		}
		total++
		if total >= start && len(page) < count {
			page, res = append(page, row), append(res, rendered[0])
		}
		return nil
	})
	if err != nil {
		return nil, nil, 0, false, err
	}
	return page, res, total, needed, nil
}

// lookup answers an indexed equality and renders the candidates; ok is
// false when attr has no index. The renderings carry the joined attribute
// when needed, and when wanted if the lister reads it with the rows;
// joined says whether they do.
func (l *lister[T]) lookup(ctx context.Context, org, attr, value string, needed, want bool) (rows []T, res []map[string]any, ok, joined bool, err error) {
	if (needed || want) && l.byIndexJoined != nil {
		rows, res, ok, err = l.byIndexJoined(ctx, org, attr, value)
		return rows, res, ok, true, err
	}
	rows, ok, err = l.byIndex(ctx, org, attr, value)
	if err != nil || !ok {
		return nil, nil, ok, false, err
	}
	res, err = l.render(ctx, org, rows, needed)
	return rows, res, true, needed, err
}

// window returns the bounds of the 1-based page [start, start+count) of n
// items.
func window(n, start, count int) (lo, hi int) {
	if start > n {
		return n, n
	}
	return start - 1, min(start-1+count, n)
}

// mentions reports whether a filter compares the top-level attribute name.
func mentions(e filter.Expr, name string) bool {
	switch e := e.(type) {
	case *filter.Logical:
		return mentions(e.Left, name) || mentions(e.Right, name)
	case *filter.Not:
		return mentions(e.X, name)
	case *filter.Compare:
		return e.Path.Extension == "" && e.Path.Attribute != nil && e.Path.Attribute.Name == name
	case *filter.ValuePath:
		return e.Path.Extension == "" && e.Path.Attribute != nil && e.Path.Attribute.Name == name
	}
	return false
}
