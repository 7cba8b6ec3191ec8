package transforms

import (
	"regexp"

	"github.com/ferryhq/ferry/runtime/connect"
)

// PredicatePlugins lists the built-in predicates.
func PredicatePlugins() []connect.PredicatePlugin {
	mk := func(name, doc string, f func(o *opts) connect.Predicate) connect.PredicatePlugin {
		return connect.PredicatePlugin{Class: PredicatePrefix + name, Doc: doc, New: func(props map[string]string) (connect.Predicate, error) {
			o := &opts{props: props}
			p := f(o)
			if len(o.es) > 0 {
				return nil, o.es
			}
			return p, nil
		}}
	}
	return []connect.PredicatePlugin{
		mk("TopicNameMatches", "true for records whose topic matches the pattern entirely", func(o *opts) connect.Predicate {
			return topicNameMatches{re: o.regex("pattern")}
		}),
		mk("HasHeaderKey", "true for records with at least one header with the name", func(o *opts) connect.Predicate {
			return hasHeaderKey{name: o.required("name")}
		}),
		mk("RecordIsTombstone", "true for records with a null value", func(*opts) connect.Predicate {
			return recordIsTombstone{}
		}),
	}
}

type topicNameMatches struct{ re *regexp.Regexp }

var _ connect.Predicate = topicNameMatches{}

func (p topicNameMatches) Test(r *connect.Record) bool { return p.re.MatchString(r.Topic) }

type hasHeaderKey struct{ name string }

var _ connect.Predicate = hasHeaderKey{}

func (p hasHeaderKey) Test(r *connect.Record) bool {
	for _, h := range r.Headers {
		if h.Key == p.name {
			return true
		}
	}
	return false
}

type recordIsTombstone struct{}

var _ connect.Predicate = recordIsTombstone{}

func (recordIsTombstone) Test(r *connect.Record) bool { return r.Value == nil }
