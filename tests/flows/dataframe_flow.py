"""A DataFrame, an Arrow table and a tensor saved by the typed codecs in one step, read in the next."""
import numpy as np
import pandas as pd

from headwater import FlowSpec, step


class DataFrameFlow(FlowSpec):
    @step
    def start(self):
        n = 300_000
        rng = np.random.default_rng(0)
        self.df = pd.DataFrame(
            {"x": rng.random(n), "k": pd.Categorical(rng.choice(["a", "b", "c"], n)),
             "when": pd.date_range("2024-01-01", periods=n, freq="min", tz="UTC", unit="ns"),
             "count": pd.array(np.where(np.arange(n) % 5 == 0, None, np.arange(n)), dtype="Int64")},
            index=pd.Index(np.arange(n) * 2, name="row"))
        self.next(self.double)

    @step
    def double(self):
        self.df.loc[self.df.index[0], "x"] = -1.0  # a loaded frame is writable
        self.total = float(self.df["x"].iloc[1:].sum())
        self.doubled = self.df.assign(x=self.df["x"] * 2)
        self.next(self.end)

    @step
    def end(self):
        print("first", self.doubled["x"].iloc[0])


if __name__ == "__main__":
    DataFrameFlow()
