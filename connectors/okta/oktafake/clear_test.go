package oktafake

import (
	"net/http"
	"testing"
)

func TestClearFaultsEndsAnOutage(t *testing.T) {
	s := New(t)
	get := func() int {
		req, _ := http.NewRequest("GET", s.URL()+RouteUsers, nil)
		req.Header.Set("Authorization", "SSWS "+s.Token())
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	s.FailNext(RouteUsers, http.StatusInternalServerError, 3)
	if got := get(); got != http.StatusInternalServerError {
		t.Fatalf("injected failure: got %d", got)
	}
	s.ClearFaults()
	if got := get(); got != http.StatusOK {
		t.Errorf("after ClearFaults: got %d, want 200", got)
	}
}
