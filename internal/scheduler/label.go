package scheduler

import "strings"

// ScheduleLabel names a DAG's schedule for people: the spec, or "none".
func ScheduleLabel(spec string) string {
	if spec == "" {
		return "none"
	}
	return spec
}

// DAGList names dags and their schedules for a log line:
// "user_automation (@daily), other (none)".
func DAGList(dags []*DAG) string {
	names := make([]string, 0, len(dags))
	for _, d := range dags {
		names = append(names, d.DagID+" ("+ScheduleLabel(d.Schedule)+")")
	}
	return strings.Join(names, ", ")
}
