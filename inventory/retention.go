package inventory

// Retention: what prune removes from a host's Docker cache. It is a pure
// decision over what the host holds (its containers, each service's cached
// image versions); the Docker calls around it are fleet's.

// CachedVersion is one cached version of a service's image.
type CachedVersion struct {
	Tag string
	Ref string
}

// RetainedService is one service prune was asked about, on one host.
type RetainedService struct {
	Name          string
	ContainerName string
	// Keep is how many versions of its image stay cached.
	Keep int
	// Versions are the cached versions of its image, newest first.
	Versions []CachedVersion
}

// PrunedImage is one image prune removes.
type PrunedImage struct {
	Name string // service:tag, for the report
	Ref  string
}

// PruneSet is what prune removes on one host, and what it keeps.
type PruneSet struct {
	Containers []Container
	Images     []PrunedImage
	Kept       []string // service:tag, "(in use)" when over the count
}

// PlanPrune decides what prune removes on a host with containers, for
// services only: the stopped containers gantry left for those services
// (labelled with their name), and each one's images but its last Keep
// versions. Another service's containers are never touched, and their
// images count as in use: a stopped -gantry-old of a service mid-swap is
// what that swap reverts to. A service's own container (even stopped by
// hand) and anything unmanaged stay.
func PlanPrune(containers []Container, services []RetainedService) PruneSet {
	var out PruneSet
	pruned := map[string]string{} // service name -> its container name
	for _, s := range services {
		pruned[s.Name] = s.ContainerName
	}
	// Images in use by any container stay; a service's own (and the
	// versions its running containers would roll back to) fill its Keep
	// first. Services built from one image (a web service and its
	// workers) each keep their own versions: one's in-use image takes
	// none of the other's places.
	inUse := map[string]bool{}
	ownInUse := map[string]map[string]bool{}      // service -> image
	ownRollbackTo := map[string]map[string]bool{} // service -> image
	for _, c := range containers {
		own, ok := pruned[c.Labels[LabelService]]
		if ok && c.Labels[LabelManaged] == "true" && !c.Running && !c.Restarting && c.Name != own {
			out.Containers = append(out.Containers, c)
			continue
		}
		svc := c.Labels[LabelService]
		if ownInUse[svc] == nil {
			ownInUse[svc], ownRollbackTo[svc] = map[string]bool{}, map[string]bool{}
		}
		for _, img := range []string{c.Image, c.Labels[LabelImage]} {
			if img != "" {
				inUse[img] = true
				ownInUse[svc][img] = true
			}
		}
		// The version a rollback would go back to comes right after.
		if prev := c.Labels[LabelPreviousImage]; prev != "" && c.Running {
			ownRollbackTo[svc][prev] = true
		}
	}
	for _, svc := range services {
		// Kept first: its images in use, then its running containers'
		// previous versions (what rollback needs), then the newest.
		keepSet := map[string]bool{}
		for _, want := range []map[string]bool{ownInUse[svc.Name], ownRollbackTo[svc.Name]} {
			for _, v := range svc.Versions {
				if want[v.Ref] && len(keepSet) < svc.Keep {
					keepSet[v.Ref] = true
				}
			}
		}
		for _, v := range svc.Versions {
			if len(keepSet) >= svc.Keep {
				break
			}
			if inUse[v.Ref] && !ownInUse[svc.Name][v.Ref] {
				continue // another service's: kept, but not one of this one's
			}
			keepSet[v.Ref] = true
		}
		for _, v := range svc.Versions {
			switch {
			case keepSet[v.Ref]:
				out.Kept = append(out.Kept, svc.Name+":"+v.Tag)
			case inUse[v.Ref]:
				out.Kept = append(out.Kept, svc.Name+":"+v.Tag+" (in use)")
			default:
				out.Images = append(out.Images, PrunedImage{Name: svc.Name + ":" + v.Tag, Ref: v.Ref})
			}
		}
	}
	return out
}
