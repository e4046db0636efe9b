package cli

import (
	"fmt"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"labrun.dev/labrun/pkg/images"
)

func newImagesCommand(s Streams) *cobra.Command {
	c := &cobra.Command{
		Use:   "images",
		Short: "Build and list the lab's images (offline, from Debian packages and Go modules)",
	}
	var o images.Options
	build := &cobra.Command{
		Use:   "build",
		Short: "Build every image the lab needs, reusing the content-addressed cache",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			o.Progress = s.Err
			p, err := images.Build(c.Context(), o)
			if err != nil {
				return err
			}
			fmt.Fprintln(s.Out, p.LabNode.Image)
			return nil
		},
	}
	build.Flags().StringVar(&o.Kubernetes, "kubernetes", "", "Kubernetes version (default: the first of images/versions.yaml)")
	build.Flags().StringVar(&o.Cache, "cache", "", "artifact cache folder (default $LABRUN_CACHE or /var/cache/labrun)")
	build.Flags().StringVar(&o.Mirror, "mirror", "", "also pull every published image (images/published.yaml) through this registry mirror, HOST[:PORT]")

	var lo images.Options
	list := &cobra.Command{
		Use:   "list",
		Short: "Show each image: name, tag, size, its source (built, pulled, imported), where it is from, and whether it is present",
		Args:  cobra.NoArgs,
		RunE: func(c *cobra.Command, _ []string) error {
			rows, err := images.List(c.Context(), lo)
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(s.Out, 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "IMAGE\tSIZE\tSTATUS\tWHERE\tSOURCE\tFROM")
			for _, r := range rows {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Ref, r.Size, r.Status, r.Where, r.Source, r.From)
			}
			return w.Flush()
		},
	}
	list.Flags().StringVar(&lo.Kubernetes, "kubernetes", "", "Kubernetes version (default: the first of images/versions.yaml)")
	list.Flags().StringVar(&lo.Cache, "cache", "", "artifact cache folder (default $LABRUN_CACHE or /var/cache/labrun)")
	c.AddCommand(build, list, newImagesPullCommand(s), newImagesImportCommand(s))
	return c
}
