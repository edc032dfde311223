"""An IncludeFile whose default is a file next to the flow: `argo-workflows create` must upload it."""
import os

from headwater import FlowSpec, IncludeFile, step

NOTES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "argo_include_notes.txt")


class ArgoIncludeFlow(FlowSpec):
    notes = IncludeFile("notes", default=NOTES, help="A text file stored with the run.")

    @step
    def start(self):
        self.lines = self.notes.splitlines()
        self.next(self.end)

    @step
    def end(self):
        pass


if __name__ == "__main__":
    ArgoIncludeFlow()
