//go:build !race

package echosse_test

// manyStreams is how many streams the load tests hold at once.
const manyStreams = 5000
