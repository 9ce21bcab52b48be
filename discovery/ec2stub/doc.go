// Package ec2stub is a stand-in for the EC2 API, small enough to read in one
// sitting, that the real AWS SDK for Go v2 can talk to. It exists so that
// gantry's EC2 discovery is tested end to end (signing, retries, XML
// decoding, pagination) without touching AWS.
//
// It answers one action of the EC2 Query API, DescribeInstances (a POST with
// a form body, Version=2016-11-15), in the documented XML shape:
//
//	DescribeInstancesResponse
//	  requestId
//	  reservationSet > item
//	    reservationId, ownerId
//	    instancesSet > item
//	      instanceId, instanceState > (code, name),
//	      placement > availabilityZone,
//	      privateIpAddress, ipAddress, privateDnsName, dnsName,
//	      tagSet > item > (key, value)
//	  nextToken
//
// Each instance is put in a reservation of its own. Supported request
// parameters:
//
//   - Filter.N.Name / Filter.N.Value.M for "tag:KEY", "tag-key",
//     "instance-state-name" and "instance-id". Values of one filter are ORed,
//     filters are ANDed, and values may use the * and ? wildcards, as in EC2.
//     Any other filter name is answered with InvalidParameterValue, as EC2
//     does for a filter it does not know.
//   - MaxResults (5 to 1000, as in EC2) and NextToken. Without MaxResults the
//     server pages at PageSize (0: everything in one page).
//   - InstanceId.N.
//
// Errors use the EC2 error shape the SDK parses:
//
//	<Response><Errors><Error><Code>..</Code><Message>..</Message></Error></Errors><RequestID>..</RequestID></Response>
//
// Knobs for tests: Throttle(n) fails the next n calls with
// RequestLimitExceeded (HTTP 503, which the SDK's standard retryer retries),
// Throttle(-1) fails every call; DenyAccess(true) fails every call with
// UnauthorizedOperation (HTTP 403). Calls counts the requests answered and
// Requests returns their form bodies.
//
// The server never checks signatures: any credentials are accepted.
//
// Start serves it on an httptest server on 127.0.0.1; Listen serves it on a
// given loopback address (and refuses any other), which is what the ec2stub
// command under cmd/ uses.
package ec2stub
