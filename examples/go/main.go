// Log a run to a chachaml server over its HTTP API, with only the standard library.
//
//	CHACHAML_URL=http://127.0.0.1:8080 CHACHAML_TOKEN=... go run .
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
)

var (
	base  = getenv("CHACHAML_URL", "http://127.0.0.1:8080")
	token = os.Getenv("CHACHAML_TOKEN")
)

func getenv(key, fallback string) string {
	if value := os.Getenv(key); value != "" {
		return value
	}
	return fallback
}

// post sends body as JSON to path and decodes the JSON answer into out (when not nil).
func post(path string, body any, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequest(http.MethodPost, base+path, bytes.NewReader(data))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		var problem struct {
			Error struct{ Message string } `json:"error"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&problem) // a body that is not the envelope leaves the message empty
		return fmt.Errorf("POST %s: %s: %s", path, resp.Status, problem.Error.Message)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

type point struct {
	Key   string  `json:"key"`
	Value float64 `json:"value"`
	Step  int     `json:"step"`
}

func run() error {
	var created struct{ ID string }
	start := map[string]any{"experiment": "go", "params": map[string]any{"lr": 0.1}}
	if err := post("/api/w/runs", start, &created); err != nil {
		return err
	}
	runPath := "/api/w/runs/" + created.ID
	if err := post(runPath+"/params", map[string]any{"depth": 3}, nil); err != nil {
		return err
	}
	batch := []point{}
	for step := 0; step < 100; step++ {
		batch = append(batch, point{Key: "loss", Value: 1 / float64(step+1), Step: step})
	}
	if err := post(runPath+"/metrics", map[string]any{"metrics": batch}, nil); err != nil {
		return err
	}
	if err := post(runPath+"/end", map[string]any{"status": "completed"}, nil); err != nil {
		return err
	}
	fmt.Println(created.ID)
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
