package canary

import (
	"strconv"
	"strings"

	"github.com/gantry-dev/gantry/internal/shell"
)

// awkProgram aggregates access log lines exactly as Stats.AddLine counts
// them, printing the summary ParseSummary reads. It is POSIX awk and runs
// on mawk (Debian's default awk), gawk and busybox awk. seglen is the
// number of bytes fed in (-1 when unknown): a last line that would take the
// byte count past it had no newline yet — nginx was still writing it — so
// it is not counted and the consumed byte count stops before it; the next
// read starts there. Lines in LogFormat take a fast path (one split on
// '"'); others are searched tag by tag, with the same result.
const awkProgram = `
function tagval(s, name,    key, rest, off, i, p, best, v, j) {
	key = name "=\""
	best = 0; off = 0; rest = s
	while ((i = index(rest, key)) > 0) {
		p = off + i
		if (p == 1 || substr(s, p - 1, 1) == " " || substr(s, p - 1, 1) == "\t") best = p
		off = p; rest = substr(s, p + 1)
	}
	if (best == 0) { TAGOK = 0; return "" }
	v = substr(s, best + length(key))
	j = index(v, "\"")
	if (j == 0) { TAGOK = 0; return "" }
	return substr(v, 1, j - 1)
}
function doline(line,    x, ua, us, urt, n, n2, n3, i, a, s, t, ms, q) {
	LINES++
	# Fast path: the line ends with the three tags (as in LogFormat) and
	# no value holds '=', so no later tag hides in one: the same values
	# tagval would find.
	q = split(line, Q, "\"")
	if (q >= 7 && Q[q] == "" && Q[q - 2] == " urt=" && Q[q - 4] == " us=" &&
	    ((x = substr(Q[q - 6], length(Q[q - 6]) - 3)) == " ua=" || x == "\tua=" || (q == 7 && Q[1] == "ua=")) &&
	    index(Q[q - 5] Q[q - 3] Q[q - 1], "=") == 0) {
		ua = Q[q - 5]; us = Q[q - 3]; urt = Q[q - 1]
	} else {
		TAGOK = 1
		ua = tagval(line, "ua"); us = tagval(line, "us"); urt = tagval(line, "urt")
		if (!TAGOK) { SKIPPED++; return }
	}
	if (ua == "-") { NOUP++; return }
	if (index(ua, ",") == 0 && index(ua, " : ") == 0 && index(us, ",") == 0 && index(us, " : ") == 0 && index(urt, ",") == 0 && index(urt, " : ") == 0) {
		n = 1; AA[1] = ua; SS[1] = us; TT[1] = urt
	} else {
		gsub(/ : /, ", ", ua); gsub(/ : /, ", ", us); gsub(/ : /, ", ", urt)
		n = split(ua, AA, ", "); n2 = split(us, SS, ", "); n3 = split(urt, TT, ", ")
		if (n == 0 || n != n2 || n != n3) { SKIPPED++; return }
	}
	for (i = 1; i <= n; i++) {
		if (AA[i] == "" || AA[i] ~ /[ \t]/) { SKIPPED++; return }
		if (SS[i] != "-" && SS[i] !~ /^[0-9][0-9][0-9]$/) { SKIPPED++; return }
		if (TT[i] != "-" && TT[i] !~ /^[0-9]+(\.[0-9]+)?$/) { SKIPPED++; return }
	}
	for (i = 1; i <= n; i++) {
		a = AA[i]; s = SS[i]; t = TT[i]
		REQ[a]++
		if (s == "-") { AB[a]++; continue }
		s = s + 0
		if (s >= 500 && s <= 599) {
			ERR[a]++
			if (s == 502 || s == 504) GW[a]++
		}
		if (t != "-") {
			ms = int(t * 1000 + 0.5)
			H[a, (ms <= MAXB ? BK[ms] : NB)]++
		}
	}
}
BEGIN {
	# BK[ms] is the bucket of ms for every ms up to the last bound: one
	# array lookup per response time.
	NB = split("@BOUNDS@", B, " "); MAXB = B[NB]
	k = 1
	for (m = 0; m <= MAXB; m++) { while (B[k] < m) k++; BK[m] = k - 1 }
	consumed = 0
}
{
	# Only a last line with no newline yet can take consumed past seglen.
	consumed += length($0) + 1
	if (seglen >= 0 && consumed > seglen) consumed -= length($0) + 1
	else doline($0)
}
END {
	for (a in REQ) {
		hs = ""
		for (b = 0; b <= NB; b++) if ((a, b) in H) hs = hs (hs == "" ? "" : ",") b ":" sprintf("%.0f", H[a, b])
		if (hs == "") hs = "-"
		printf "A\t%s\t%.0f\t%.0f\t%.0f\t%.0f\t%s\n", a, REQ[a], ERR[a], GW[a], AB[a], hs
	}
	printf "T\t%.0f\t%.0f\t%.0f\t%.0f\n", LINES, NOUP, SKIPPED, consumed
}
`

// AwkProgram returns the awk program that aggregates access log lines on
// the load balancer (see awkProgram); it reads the variable seglen.
func AwkProgram() string {
	b := make([]string, len(BucketBounds))
	for i, v := range BucketBounds {
		b[i] = strconv.FormatInt(v, 10)
	}
	return strings.Replace(awkProgram, "@BOUNDS@", strings.Join(b, " "), 1)
}

// AwkCommand returns the shell command that aggregates the log lines on
// its stdin: seglen is the number of bytes that will be fed in (so that a
// last line still being written is left out), or -1 to count every line.
// It runs awk in the C locale, so lengths are bytes.
func AwkCommand(seglen int64) string {
	return "LC_ALL=C awk -v seglen=" + strconv.FormatInt(seglen, 10) + " " + shell.Quote(AwkProgram())
}
