"""The SQL both backends share: one repository per noun over the :mod:`database` seam.

Only the backends (:mod:`chachaml.store.sqlite`, :mod:`chachaml.store.postgres`) and
store-to-store copies (:mod:`chachaml.store.transfer`) import this package; everything else
sees a store through its protocol.
"""
