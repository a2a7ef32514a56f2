package supervisor

import (
	"errors"
	"os"
)

// LogMode is the mode of every component's log: logs name hosts, users
// and requests, and only root reads them.
const LogMode = 0o600

// OpenLog opens a log for appending, creating it LogMode, and tightens a
// log an older version left readable by others.
func OpenLog(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, LogMode)
	if err != nil {
		return nil, err
	}
	if err := f.Chmod(LogMode); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	return f, nil
}
