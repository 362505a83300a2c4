package cassandratest

// Check parses a statement and resolves it against the double's schema
// without running it, returning the error the double would answer with (a
// syntax or invalid-query error), or nil.
func Check(d *Double, query string) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, err := d.prepare(query, ""); err != nil {
		return err
	}
	return nil
}
