package workers

// registerFeeds registers the background jobs of the feeds product.
func (r *Runner) registerFeeds() {}
