package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/images"
)

// newImagesPullCommand is `images pull NAME…`: published images the lab
// cannot build here, fetched at their pinned digests.
func newImagesPullCommand(s Streams) *cobra.Command {
	var o images.PullOptions
	var all bool
	c := &cobra.Command{
		Use:   "pull [NAME...]",
		Short: "Pull published images (images/published.yaml) at their pinned digests into the artifact cache, from their registries or a mirror",
		Long: `Pull published images (Calico, Weave Net, kube-dns, node-cache, kindnetd) that cannot be built here
into the artifact cache as docker-loadable tarballs, checking each pinned digest. With --mirror HOST[:PORT],
registry.k8s.io/dns/x:TAG is pulled as HOST[:PORT]/dns/x:TAG (the digest kept and checked). One try each,
with short timeouts: a registry that does not answer fails in seconds.`,
		RunE: func(c *cobra.Command, args []string) error {
			list, err := images.LoadPublished()
			if err != nil {
				return err
			}
			switch {
			case all && len(args) > 0:
				return UsageError{fmt.Errorf("give image names or --all, not both")}
			case !all && len(args) == 0:
				var names []string
				for _, p := range list {
					names = append(names, p.Name)
				}
				return UsageError{fmt.Errorf("name the images to pull, or --all; published: %s", strings.Join(names, ", "))}
			case !all:
				if list, err = images.FindPublished(list, args...); err != nil {
					return UsageError{err}
				}
			default:
				list = images.WithoutNode(list)
			}
			o.Progress = s.Err
			got, err := images.PullAll(c.Context(), list, o)
			for _, r := range got {
				fmt.Fprintf(s.Out, "%s\t%s\t%s\n", r.Ref, r.Digest, r.Tarball)
			}
			return err
		},
	}
	c.Flags().BoolVar(&all, "all", false, "pull every published image the nodes load (not kind's node image, kind-node: name it)")
	c.Flags().StringVar(&o.Mirror, "mirror", "", "registry mirror HOST[:PORT] (http://HOST[:PORT] for plain HTTP) holding the images under their repository paths")
	c.Flags().StringVar(&o.Cache, "cache", "", "artifact cache folder (default $LABRUN_CACHE or /var/cache/labrun)")
	c.Flags().DurationVar(&o.Timeout, "timeout", 0, "bound on one image's pull, download included (default 10m)")
	return c
}

// newImagesImportCommand is `images import FILE.tar`.
func newImagesImportCommand(s Streams) *cobra.Command {
	var cache string
	c := &cobra.Command{
		Use:   "import FILE.tar...",
		Short: "Store the images of docker-loadable tarballs (docker save, crane pull) in the artifact cache, by their repo:tag",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(_ *cobra.Command, args []string) error {
			for _, f := range args {
				got, err := images.Import(cache, f)
				if err != nil {
					return err
				}
				for _, r := range got {
					fmt.Fprintf(s.Out, "%s\t%s\t%s\n", r.Ref, r.Digest, r.Tarball)
				}
			}
			return nil
		},
	}
	c.Flags().StringVar(&cache, "cache", "", "artifact cache folder (default $LABRUN_CACHE or /var/cache/labrun)")
	return c
}
