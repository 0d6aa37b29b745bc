"""Plotting shared by the image classification handlers (MNIST family, CIFAR).

:class:`ImageClassificationPlots` is a mixin for :class:`data.dataset.Dataset`
subclasses whose inputs are images: each sample is drawn as an image titled
with its label (and prediction); when class scores are given, a second panel
shows them as bars with the true class highlighted.
"""
import numpy as np


class ImageClassificationPlots:
    """Mixin implementing ``_plot_sample`` / ``_plot_config`` for image
    classification datasets (needs ``in_shape``, ``num_classes`` and
    ``get_identifier`` from the host class)."""

    def _plot_sample(self, fig, inner_grid, num_inner_plots, ind, inputs, outputs=None, predictions=None,
                     **kwargs):
        """Draw one image (``inputs`` is ``[1, prod(in_shape)]``) and, if
        ``num_inner_plots == 2``, a bar chart of ``predictions``."""
        name = self.get_identifier()
        ax = fig.add_subplot(inner_grid[0])
        label = None
        if outputs is None:
            ax.set_title(f'{name} sample')
        else:
            label = int(np.asarray(outputs).reshape(-1)[0])
            if predictions is None:
                ax.set_title(f'{name} sample with\nlabel: {label}')
            else:
                preds = np.asarray(predictions).reshape(-1)
                pred_label = int(np.argmax(preds)) if preds.size == self.num_classes else int(preds[0])
                ax.set_title(f'{name} sample with\nlabel: {label} (prediction: {pred_label})')
        ax.set_axis_off()
        image = np.asarray(inputs).reshape(self.in_shape)
        ax.imshow(np.squeeze(image), cmap='gray' if self.in_shape[-1] == 1 else None)
        if num_inner_plots == 2:
            ax = fig.add_subplot(inner_grid[1])
            ax.set_title('Predictions')
            bars = ax.bar(range(self.num_classes), np.asarray(predictions).reshape(-1))
            ax.set_xticks(range(self.num_classes))
            if label is not None:
                bars[label].set_color('r')

    def _plot_config(self, inputs, outputs=None, predictions=None):
        """Two stacked panels per sample when a score per class is given."""
        config = super()._plot_config(inputs, outputs=outputs, predictions=predictions)
        if predictions is not None and np.shape(predictions)[1] == self.num_classes:
            config.update(outer_hspace=0.6, inner_hspace=0.4, num_inner_rows=2, num_inner_plots=2)
        return config
