package main

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"os"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// Example_receiveWebhooks is the README's example of an application that
// consumes scimsync's webhooks ("Integrating your application"); a test
// keeps the two the same. It is compiled, not run.
func Example_receiveWebhooks() {
	wh, err := standardwebhooks.NewWebhook(os.Getenv("SCIMSYNC_WEBHOOK_SECRET")) // whsec_…
	if err != nil {
		log.Fatal(err)
	}
	http.HandleFunc("POST /scimsync-events", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil || wh.Verify(body, r.Header) != nil { // signature and timestamp
			http.Error(w, "not from scimsync", http.StatusUnauthorized)
			return
		}
		var ev struct {
			ID, Type, OrgID string
			Sequence        int64
			Data            json.RawMessage
		}
		if err := json.Unmarshal(body, &ev); err != nil {
			http.Error(w, "not an event", http.StatusBadRequest)
			return
		}
		// Apply ev unless ev.ID was applied before (deliveries repeat), in
		// the transaction that records ev.ID; answer 2xx only once it commits.
		w.WriteHeader(http.StatusNoContent)
	})
	log.Fatal(http.ListenAndServe("127.0.0.1:8000", nil))
}
