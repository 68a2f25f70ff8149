package store

// ChannelListSQL is the statement UserChannels runs, and its arguments.
func ChannelListSQL(userID string, f ChannelFilter, sort []ChannelSort, first int, after string) (string, []any, error) {
	q, err := buildChannelList(userID, f, sort, first, after)
	if err != nil {
		return "", nil, err
	}
	return q.sql, q.args, nil
}
