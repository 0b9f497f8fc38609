print("graced")
