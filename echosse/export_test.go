package echosse

// CompressorsInUse returns how many compressors streams hold, for tests.
func CompressorsInUse() int64 { return compressorsInUse.Load() }
