"""A one-line progress display for training loops: step, rate, ETA."""
import sys
import time


class ProgressLine:
    """Rewrites one terminal line with the step, the rate and the time left.

    Args:
        total_steps: the step count at which the run ends.
        items_per_step: e.g. the batch size, to show images/s; 1 shows steps/s.
        unit: the name of the items ("images", "steps").
        enabled: False makes every method a no-op.
    """

    def __init__(self, total_steps, items_per_step=1, unit="steps", enabled=True,
                 stream=None):
        self.total, self.per_step, self.unit = total_steps, items_per_step, unit
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.start = None
        self.first_step = None
        self.mid_line = False

    def update(self, step):
        """Shows ``step``; the rate is measured from the first update on."""
        if not self.enabled:
            return
        if self.first_step is None:
            self.first_step, self.start = step, time.perf_counter()
            return
        seconds = max(time.perf_counter() - self.start, 1e-9)
        rate = (step - self.first_step) * self.per_step / seconds
        eta = (self.total - step) * self.per_step / max(rate, 1e-9)
        self.stream.write(f"\rstep {step}/{self.total}  {rate:7.1f} {self.unit}/s  "
                          f"ETA {eta:6.0f} s ")
        self.stream.flush()
        self.mid_line = True

    def close(self):
        """Ends the line so that other output starts on a new one."""
        if self.mid_line:
            self.stream.write("\n")
            self.mid_line = False
