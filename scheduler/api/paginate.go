package api

import (
	"encoding/base64"
	"net/http"
	"sort"
	"strconv"
)

// defaultMaxResults is MSK Connect's page size when maxResults is absent
// (the model allows 1..100).
const defaultMaxResults = 100

// maxResults reads the maxResults query parameter (1..100).
func maxResults(r *http.Request) (int, error) {
	v, ok := r.URL.Query()["maxResults"]
	if !ok {
		return defaultMaxResults, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 1 || n > 100 {
		return 0, badRequest("maxResults: must be a whole number from 1 to 100, got %q", v[0])
	}
	return n, nil
}

// paginate orders items by sortKey (descending when desc), skips what the
// page behind nextToken returned, and returns at most max items with the
// token of the next page ("" on the last page). A token is the opaque
// (base64) sort key of the last item returned, so pages stay consistent
// while records come and go.
func paginate[T any](items []T, sortKey func(T) string, desc bool, token string, max int) ([]T, string, error) {
	sort.SliceStable(items, func(i, j int) bool {
		if desc {
			return sortKey(items[i]) > sortKey(items[j])
		}
		return sortKey(items[i]) < sortKey(items[j])
	})
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || len(raw) == 0 {
			return nil, "", badRequest("nextToken: %q is not a token this API issued", token)
		}
		after := string(raw)
		i := sort.Search(len(items), func(i int) bool {
			if desc {
				return sortKey(items[i]) < after
			}
			return sortKey(items[i]) > after
		})
		items = items[i:]
	}
	if len(items) <= max {
		return items, "", nil
	}
	page := items[:max]
	return page, base64.RawURLEncoding.EncodeToString([]byte(sortKey(page[len(page)-1]))), nil
}
