//go:build race

package echosse_test

// manyStreams is how many streams the load tests hold at once: the race
// detector allows at most 8128 live goroutines, and each stream needs two
// on the server.
const manyStreams = 1000
